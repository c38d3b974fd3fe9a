"""Crash and shutdown: SIGKILL recovery within the lease, renewal, SIGTERM grace and put-back."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from redis.asyncio import Redis

from devsupport.waiting import wait_until
from runtime.queue import JobState, QueueAdmin, QueueClient
from runtime.queue.keys import running_attempt
from tests.queue.harness import StartWorkers

pytestmark = pytest.mark.slow


async def holder(redis: Redis, admin: QueueAdmin, job_id: str) -> int:
    """The pid of the worker holding the job's lease (worker ids are host:pid:nonce)."""
    raw = await redis.execute_command("HGET", admin.keys.lease, job_id)
    assert raw is not None
    return int(running_attempt(raw)[0].split(":")[1])


async def test_job_of_a_sigkilled_worker_is_rerun_by_another_within_the_lease(
    client: QueueClient, admin: QueueAdmin, redis: Redis, start_workers: StartWorkers
) -> None:
    workers = await start_workers(2, concurrency=1, lease_s=0.5)
    job_id = await client.enqueue("heavy_workflow_execution", {"duration_ms": 300})
    await wait_until(lambda: _state_is(admin, job_id, JobState.ACTIVE), within=10, what="job active")
    pid = await holder(redis, admin, job_id)
    victim = next(w for w in workers if w.pid == pid)
    victim.kill()
    killed_at_ms = time.time() * 1000
    await wait_until(lambda: _state_is(admin, job_id, JobState.COMPLETED), within=10, what="job re-run")
    job = await admin.job(job_id)
    assert job.attempts == 2
    assert "stalled" in job.errors[0].error
    assert job.started_at is not None
    assert job.started_at - killed_at_ms <= 500 + 100 + 400  # lease + one reaper tick + slack


async def test_a_slow_job_of_a_live_worker_keeps_its_lease_and_runs_once(
    client: QueueClient, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    await start_workers(1, lease_s=0.5)  # its own reaper would re-run the job if it stopped renewing
    job_id = await client.enqueue("heavy_workflow_execution", {"duration_ms": 1000})  # 2 leases long
    await wait_until(lambda: _state_is(admin, job_id, JobState.COMPLETED), within=10, what="slow job done")
    job = await admin.job(job_id)
    assert (job.attempts, job.errors) == (1, [])


async def test_sigterm_lets_active_jobs_finish_and_puts_the_rest_back(
    client: QueueClient, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    (worker,) = await start_workers(1, concurrency=2, shutdown_grace_s=1.0)
    short = await client.enqueue("heavy_workflow_execution", {"duration_ms": 400})
    long = await client.enqueue("heavy_workflow_execution", {"duration_ms": 30_000})
    await wait_until(lambda: _count_active(admin, 2), within=10, what="both active")
    worker.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(worker.wait_exit, 5.0)
    assert code == 0
    assert (await admin.job(short)).state is JobState.COMPLETED
    put_back = await admin.job(long)
    assert (put_back.state, put_back.attempts) == (JobState.WAITING, 0)


async def test_a_worker_stopped_while_idle_exits_promptly(start_workers: StartWorkers) -> None:
    (worker,) = await start_workers(1)
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait_exit, 5.0) == 0
    assert time.monotonic() - started < 3.0


async def _state_is(admin: QueueAdmin, job_id: str, state: JobState) -> bool:
    return (await admin.job(job_id)).state is state


async def _count_active(admin: QueueAdmin, n: int) -> bool:
    return (await admin.counts()).active == n
