"""A job can go back without using an attempt and hold its queue; per-key limits stack by prefix."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from devsupport.waiting import wait_until
from runtime.queue import JobContext, JobRequest, QueueAdmin, QueueClient, QueueSpec, RateLimit, Requeue, Worker
from tests.queue.harness import settled

Calls = list[tuple[float, int]]


@contextlib.asynccontextmanager
async def running(spec: QueueSpec, redis: Redis, shared: dict[str, Any]) -> AsyncIterator[Worker]:
    worker = Worker(spec, redis, shared=shared)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)


async def rate_limited_once(ctx: JobContext, hold_s: float = 0.0) -> int:
    calls: Calls = ctx["calls"]
    calls.append((time.monotonic(), int(ctx["job_try"])))
    if len(calls) == 1:
        raise Requeue("provider said 429", hold_s=hold_s)
    return len(calls)


async def record_start(ctx: JobContext) -> None:
    ctx["calls"].append((time.monotonic(), 0))


async def test_a_requeued_job_runs_again_without_using_an_attempt(redis: Redis) -> None:
    spec = QueueSpec("requeue_attempts", [rate_limited_once], attempts=1, lease_s=2.0)
    calls: Calls = []
    await QueueClient(spec, redis).enqueue("rate_limited_once", job_id="j1")
    admin = QueueAdmin(spec, redis)
    async with running(spec, redis, {"calls": calls}):
        await wait_until(lambda: settled(admin), within=20, what="the job to finish")
    job = await admin.job("j1")
    assert job.state == "completed"
    assert [attempt for _, attempt in calls] == [1, 1]
    assert job.errors == []


async def test_a_hold_stops_every_claim_until_it_ends(redis: Redis) -> None:
    spec = QueueSpec("requeue_hold", [rate_limited_once, record_start], attempts=1, lease_s=2.0, concurrency=1)
    calls: Calls = []
    client = QueueClient(spec, redis)
    await client.enqueue("rate_limited_once", {"hold_s": 0.6}, job_id="first", priority=5)
    await client.enqueue("record_start", job_id="second")
    admin = QueueAdmin(spec, redis)
    async with running(spec, redis, {"calls": calls}):
        await wait_until(lambda: settled(admin), within=20, what="both jobs to finish")
    held_at = calls[0][0]
    assert len(calls) == 3
    assert all(at - held_at >= 0.55 for at, _ in calls[1:]), "nothing started while the queue was held"
    assert not await redis.exists(spec.keys.hold)


def max_in_any_window(starts: list[float], window_s: float) -> int:
    starts = sorted(starts)
    return max(sum(1 for s in starts if first <= s < first + window_s) for first in starts)


@pytest.mark.parametrize("enqueue_group_first", [True, False])
async def test_a_prefix_limit_applies_on_top_of_the_per_key_limit(redis: Redis, enqueue_group_first: bool) -> None:
    async def group(ctx: JobContext) -> None:
        ctx["group"].append(time.monotonic())

    async def private(ctx: JobContext) -> None:
        ctx["private"].append(time.monotonic())

    spec = QueueSpec(
        "prefix_limits",
        [group, private],
        key_rate_limit=RateLimit(10, 1.0),
        key_prefix_rate_limits={"chat:-": RateLimit(2, 0.6)},
        lease_s=2.0,
    )
    groups = [JobRequest("group", rate_key="chat:-100") for _ in range(5)]
    privates = [JobRequest("private", rate_key="chat:42") for _ in range(5)]
    ids = await QueueClient(spec, redis).enqueue_many(groups + privates if enqueue_group_first else privates + groups)
    admin = QueueAdmin(spec, redis)
    shared: dict[str, list[float]] = {"group": [], "private": []}
    started = time.monotonic()
    async with running(spec, redis, dict(shared)):
        await wait_until(lambda: settled(admin), within=30, what="all jobs to finish")
    # The limit counts claims on the Redis clock (ms); a handler's own start stamp lags its claim
    # by a scheduling delay that differs from job to job, so it cannot judge a 600 ms boundary.
    jobs = [await admin.job(job_id) for job_id in ids if job_id is not None]
    group_claims = [float(job.started_at) for job in jobs if job.name == "group" and job.started_at is not None]
    assert len(group_claims) == 5
    assert max_in_any_window(group_claims, 600) == 2
    assert max(group_claims) - min(group_claims) >= 1200
    assert max(shared["private"]) - started < max(shared["group"]) - started, "private chats are not held back"
