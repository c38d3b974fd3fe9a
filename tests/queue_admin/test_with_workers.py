"""QueueAdmin driving real ``services.workflow.worker`` processes: the registry entry a live worker
writes, error history with tracebacks, retry of failed jobs, pause stopping pickup, health."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from pathlib import Path
from typing import cast

from switchboard.queue.v1 import queue_pb2 as Q

from devsupport.auth import BOOTSTRAP_TOKEN
from devsupport.waiting import wait_until
from runtime.auth import Authenticator, bearer_metadata
from runtime.queue import QueueAdmin, QueueSpec
from runtime.redis_durability import check_redis_durability
from tests.auth.harness import INTERNAL_TOKEN, make_keys
from tests.queue_admin.harness import AdminServer, StartWorker, start_admin_server, stop_admin_server

HEAVY = "heavy_workflow_execution"


async def enqueue(admin: AdminServer, name: str = HEAVY, **data: object) -> str:
    request = Q.EnqueueJobRequest(queue="workflow", name=name, data_json=json.dumps(data))
    return (await admin.stub.EnqueueJob(request, timeout=5)).job_id


async def test_a_running_worker_declares_its_queue_with_its_settings(
    admin_server: AdminServer, start_worker: StartWorker
) -> None:
    await start_worker(concurrency=7, rate_limit="30/1s")
    queue = await admin_server.stub.GetQueue(Q.GetQueueRequest(queue="workflow"), timeout=5)
    assert (queue.concurrency, queue.workers) == (7, 1)
    assert (queue.rate_limit.max_jobs, queue.rate_limit.period_ms) == (30, 1000)
    health = await admin_server.stub.GetHealth(Q.GetHealthRequest(), timeout=5)
    # The shared test Redis runs without AOF on purpose: the health detail says so, nothing else.
    redis_problems = "; ".join(await check_redis_durability(admin_server.app.redis)) or "ok"
    assert [(h.queue, h.healthy, h.workers, h.detail) for h in health.queues] == [("workflow", True, 1, redis_problems)]


async def test_failed_job_keeps_every_attempt_error_and_retry_runs_it_to_completion(
    admin_server: AdminServer, start_worker: StartWorker
) -> None:
    await start_worker(attempts=2)
    job_id = await enqueue(admin_server, fail_times=2, duration_ms=40)

    async def failed() -> bool:
        return await admin_server.state_of(job_id) == Q.JOB_STATE_FAILED

    await wait_until(failed, within=10, what="job failed after its two attempts")
    job = await admin_server.stub.GetJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5)
    assert (job.attempts, job.max_attempts) == (2, 2)
    assert [e.attempt for e in job.errors] == [1, 2]
    assert {e.error_type for e in job.errors} == {"TransientError"}
    assert "simulated transient failure on attempt 2" in job.errors[1].message
    assert "Traceback (most recent call last)" in job.errors[1].traceback
    assert job.errors[1].at_ms >= job.errors[0].at_ms > 0
    assert job.finished_at_ms >= job.started_at_ms > 0

    listed = await admin_server.stub.ListJobs(Q.ListJobsRequest(queue="workflow", state=Q.JOB_STATE_FAILED), timeout=5)
    assert [j.job_id for j in listed.jobs] == [job_id]

    retried = await admin_server.stub.RetryJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5)
    assert retried.job.state in {Q.JOB_STATE_WAITING, Q.JOB_STATE_ACTIVE, Q.JOB_STATE_COMPLETED}

    async def completed() -> bool:
        return await admin_server.state_of(job_id) == Q.JOB_STATE_COMPLETED

    await wait_until(completed, within=10, what="retried job completed")
    done = await admin_server.stub.GetJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5)
    assert json.loads(done.result_json) == {"kind": HEAVY, "attempt": 3, "workedMs": 40}
    assert json.loads(done.progress_json) == 100
    assert len(done.errors) == 2  # history kept


async def test_retry_failed_requeues_every_failed_job_and_clean_drops_completed(
    admin_server: AdminServer, start_worker: StartWorker, layer: QueueAdmin
) -> None:
    await start_worker(attempts=1)
    for _ in range(3):
        await enqueue(admin_server, fail_times=1)

    async def three_failed() -> bool:
        return (await layer.counts()).failed == 3

    await wait_until(three_failed, within=10, what="three failed jobs")
    reply = await admin_server.stub.RetryFailed(Q.QueueRef(queue="workflow"), timeout=5)
    assert reply.retried == 3

    async def three_completed() -> bool:
        return (await layer.counts()).completed == 3

    await wait_until(three_completed, within=10, what="retried jobs completed on attempt 2")
    clean = Q.CleanQueueRequest(queue="workflow", state=Q.JOB_STATE_COMPLETED)
    assert (await admin_server.stub.CleanQueue(clean, timeout=5)).removed == 3
    assert (await layer.counts()).completed == 0


async def worker_looked_again(layer: QueueAdmin) -> None:
    """Return once the queue's idle worker has claimed (or tried to) since the last enqueue.

    An enqueue leaves a wake-up token in the queue's notify list; the idle worker pops it, claims,
    and only then blocks on the list again. So once that token is gone and a second one, pushed
    here, is gone too, a claim ran after the enqueue.
    """
    redis, notify = layer.redis, layer.keys.notify

    async def consumed() -> bool:
        return await cast(Awaitable[int], redis.llen(notify)) == 0

    await wait_until(consumed, within=10, what="the worker takes the enqueue's wake-up")
    await cast(Awaitable[int], redis.rpush(notify, 1))
    await wait_until(consumed, within=10, what="the worker takes a second wake-up, its claim done")


async def test_pause_stops_pickup_until_resume(
    admin_server: AdminServer, start_worker: StartWorker, layer: QueueAdmin
) -> None:
    await start_worker()
    await admin_server.stub.PauseQueue(Q.QueueRef(queue="workflow"), timeout=5)
    job_id = await enqueue(admin_server, "statistics_aggregation")
    await worker_looked_again(layer)
    assert await admin_server.state_of(job_id) == Q.JOB_STATE_PAUSED
    queue = await admin_server.stub.GetQueue(Q.GetQueueRequest(queue="workflow"), timeout=5)
    assert queue.counts.paused == 1
    assert queue.counts.completed == 0

    await admin_server.stub.ResumeQueue(Q.QueueRef(queue="workflow"), timeout=5)

    async def completed() -> bool:
        return (await layer.counts()).completed == 1

    await wait_until(completed, within=10, what="job ran after resume")


async def test_over_grpc_a_failed_jobs_traceback_reaches_admins_and_the_internal_identity_only(
    redis_url: str, tmp_path: Path, declared: QueueSpec, start_worker: StartWorker
) -> None:
    keys = await make_keys(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    authenticator = Authenticator(bootstrap_token=BOOTSTRAP_TOKEN, internal_token=INTERNAL_TOKEN, store=keys.store)
    admin_server = await start_admin_server(redis_url, tmp_path / "spool", authenticator)
    try:
        await start_worker(attempts=1)
        job_id = await enqueue(admin_server, fail_times=1)

        async def failed() -> bool:
            return await admin_server.state_of(job_id) == Q.JOB_STATE_FAILED

        await wait_until(failed, within=10, what="job failed")
        ref = Q.JobRef(queue="workflow", job_id=job_id)
        listing = Q.ListJobsRequest(queue="workflow", state=Q.JOB_STATE_FAILED)
        seen = {}
        for who, token in [
            ("read", keys.read), ("operate", keys.operate), ("admin", keys.admin), ("internal", INTERNAL_TOKEN)
        ]:  # fmt: skip
            (error,) = (await admin_server.stub.GetJob(ref, metadata=bearer_metadata(token), timeout=5)).errors
            (listed,) = (await admin_server.stub.ListJobs(listing, metadata=bearer_metadata(token), timeout=5)).jobs
            assert listed.errors[0] == error
            seen[who] = error
        for who in ("read", "operate"):
            assert seen[who].traceback == ""
            assert (seen[who].error_type, seen[who].message) == (seen["admin"].error_type, seen["admin"].message)
        assert seen["read"].error_type == "TransientError"
        assert "simulated transient failure on attempt 1" in seen["read"].message
        for who in ("admin", "internal"):
            assert seen[who].traceback.startswith("Traceback (most recent call last)")
            assert "/services/workflow/" in seen[who].traceback  # the server paths a reader must not see
    finally:
        await stop_admin_server(admin_server)
        await keys.store.close()
