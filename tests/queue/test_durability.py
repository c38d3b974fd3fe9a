"""No acknowledged job is lost when Redis crashes (SIGKILL) and comes back from its append-only file."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from runtime.errors import TransientError
from runtime.queue import (
    DiskSpool,
    Enqueued,
    JobContext,
    JobRequest,
    JobState,
    QueueAdmin,
    QueueClient,
    QueueSpec,
    Worker,
)
from runtime.retry import RetryPolicy

pytestmark = pytest.mark.slow

release = asyncio.Event()
"""Set by the test: the first attempt of ``fails_after_release`` then fails."""
first_attempt_runs = asyncio.Event()
"""Set by the first attempt of ``fails_after_release`` once it runs (its worker holds the lease)."""


async def fails_after_release(ctx: JobContext) -> str:
    if int(ctx["job_try"]) == 1:
        first_attempt_runs.set()
        await release.wait()
        raise TransientError("the first attempt fails while Redis is down")
    return "second attempt"


@pytest.fixture
async def aof_redis() -> AsyncIterator[RedisServer]:
    server = RedisServer(appendfsync="always")
    server.start()
    try:
        yield server
    finally:
        server.close()


async def _state(admin: QueueAdmin, job_id: str, state: JobState) -> bool:
    with contextlib.suppress(Exception):
        job = await admin.job(job_id)
        return job.state == state
    return False


async def test_a_job_whose_failure_redis_could_not_record_runs_again_after_a_restart_from_aof(
    aof_redis: RedisServer,
) -> None:
    release.clear()
    first_attempt_runs.clear()
    spec = QueueSpec(
        name="aof",
        functions=[fails_after_release],
        concurrency=1,
        lease_s=1.0,
        backoff=RetryPolicy(attempts=3, base=0.05, cap=0.1),
    )
    redis = Redis.from_url(aof_redis.url, socket_timeout=2.0, socket_connect_timeout=0.5)
    client, admin, worker = QueueClient(spec, redis), QueueAdmin(spec, redis), Worker(spec, redis)
    running = asyncio.create_task(worker.run())
    try:
        job_id = await client.enqueue("fails_after_release")
        # The attempt running, not just the job "active" in Redis: the claim's reply may still wait
        # for the worker's loop, and "not held" before the worker took the job would let the test
        # restart Redis before the attempt fails, so its failure would be recorded.
        await wait_until(first_attempt_runs.is_set, within=20, what="the first attempt runs")
        aof_redis.kill()
        release.set()  # the attempt fails now; recording it outlasts the worker's retries
        await wait_until(lambda: _given_up(worker, job_id), within=30, what="the worker gives the lease up")
        aof_redis.start()  # from the AOF: the job is still active, under a lease nobody renews
        await wait_until(lambda: _state(admin, job_id, JobState.COMPLETED), within=30, what="the job re-ran")
        job = await admin.job(job_id)
        assert job.attempts == 2
        assert "stalled" in job.errors[0].error
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
        await client.close()
        await redis.aclose()


async def _given_up(worker: Worker, job_id: str) -> bool:
    return not worker.holds(job_id)


async def test_an_enqueue_to_a_stalled_redis_is_spooled_within_the_budget_and_flushed_once(
    aof_redis: RedisServer, tmp_path: Path
) -> None:
    spec = QueueSpec(name="stall", functions=[fails_after_release])
    redis = Redis.from_url(aof_redis.url, socket_timeout=5.0)  # the services' timeout: longer than the budget
    pauser = Redis.from_url(aof_redis.url)
    spool = DiskSpool(tmp_path / "spool.db")
    client = QueueClient(spec, redis, spool=spool, redis_budget_s=1.0)
    try:
        await client.enqueue("fails_after_release", job_id="before-the-stall")
        await pauser.execute_command("CLIENT", "PAUSE", 12_000, "ALL")
        job_id = await client.enqueue("fails_after_release")
        # Answered while Redis still stalls: from the spool (whose flush waits for the pause).
        assert client.health() == "degraded"
        assert spool.count("stall") == 1
        await wait_until(lambda: _flushed(client), within=30, what="the spool flushed")
        admin = QueueAdmin(spec, redis)
        assert (await admin.job(job_id)).state == JobState.WAITING
        assert (await admin.counts()).waiting == 2
    finally:
        await client.close()
        spool.close()
        await pauser.aclose()
        await redis.aclose()


async def _flushed(client: QueueClient) -> bool:
    return client.health() == "ok" and client.spooled() == 0


async def test_a_spooled_job_whose_id_exists_in_redis_is_refused_at_flush_and_the_caller_told(
    aof_redis: RedisServer, tmp_path: Path
) -> None:
    spec = QueueSpec(name="dup", functions=[fails_after_release, succeeds])
    redis = Redis.from_url(aof_redis.url, socket_timeout=5.0)
    pauser = Redis.from_url(aof_redis.url)
    spool = DiskSpool(tmp_path / "spool.db")
    client = QueueClient(spec, redis, spool=spool, redis_budget_s=1.0)
    before = REGISTRY.get_sample_value("queue_spool_duplicates_total", {"queue": "dup"}) or 0.0
    events = redis.pubsub()
    try:
        await client.enqueue("succeeds", job_id="invoice-42")
        await events.subscribe(spec.keys.events)
        await pauser.execute_command("CLIENT", "PAUSE", 12_000, "ALL")
        answer = await client.submit(JobRequest("fails_after_release", job_id="invoice-42"))
        assert answer == Enqueued("invoice-42", spooled=True)  # accepted provisionally: Redis is not there
        duplicate = await _next_event(events, "duplicate")
        assert (duplicate["jobId"], duplicate["name"]) == ("invoice-42", "fails_after_release")
        assert REGISTRY.get_sample_value("queue_spool_duplicates_total", {"queue": "dup"}) == before + 1
        job = await QueueAdmin(spec, redis).job("invoice-42")
        assert job.name == "succeeds"  # the job that was there first is untouched
    finally:
        await events.aclose()
        await client.close()
        spool.close()
        await pauser.aclose()
        await redis.aclose()


async def succeeds(ctx: JobContext) -> str:
    return "done"


async def _next_event(events: Any, name: str) -> dict[str, Any]:
    async with asyncio.timeout(40):
        while True:
            message = await events.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                event: dict[str, Any] = json.loads(message["data"])
                if event["event"] == name:
                    return event
