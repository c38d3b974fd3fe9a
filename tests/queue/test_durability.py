"""No acknowledged job is lost when Redis crashes (SIGKILL) and comes back from its append-only file."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from runtime.errors import TransientError
from runtime.queue import JobContext, JobState, QueueAdmin, QueueClient, QueueSpec, Worker
from runtime.retry import RetryPolicy

pytestmark = pytest.mark.slow

release = asyncio.Event()
"""Set by the test: the first attempt of ``fails_after_release`` then fails."""


async def fails_after_release(ctx: JobContext) -> str:
    if int(ctx["job_try"]) == 1:
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
        await wait_until(lambda: _state(admin, job_id, JobState.ACTIVE), within=20, what="job active")
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
