"""QueueAdmin over a real grpc.aio server and real Redis: reads, enqueue validation, job control.

The workflow queue is declared in the registry exactly as a worker's heartbeat writes it; no
worker runs here, so enqueued jobs stay where the RPCs put them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import grpc.aio
import pytest
from redis.asyncio import Redis
from switchboard.common.v1 import common_pb2
from switchboard.queue.v1 import queue_pb2 as Q

from runtime.auth.grpc_server import _CALLER
from runtime.auth.scopes import Principal, Scope, granted_by
from runtime.grpc_errors import details_from_rpc_error
from runtime.queue import AttemptError, JobInfo, JobState, QueueAdmin, QueueSpec
from runtime.queue.registry import declare
from runtime.queue.spec import RateLimit
from services.queue_admin.convert import job_pb
from services.queue_admin.servicer import _sees_tracebacks
from tests.queue_admin.harness import AdminServer

pytestmark = pytest.mark.usefixtures("declared")

HEAVY = "heavy_workflow_execution"


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def enqueue(admin: AdminServer, **fields: Any) -> str:
    request = Q.EnqueueJobRequest(queue="workflow", name=HEAVY, **fields)
    return (await admin.stub.EnqueueJob(request, timeout=5)).job_id


async def test_list_queues_reports_declaration_counts_and_pause(admin_server: AdminServer, layer: QueueAdmin) -> None:
    await enqueue(admin_server)
    await enqueue(admin_server, delay_ms=60_000)
    await layer.pause()
    reply = await admin_server.stub.ListQueues(Q.ListQueuesRequest(), timeout=5)
    (queue,) = reply.queues
    assert queue.name == "workflow"
    assert queue.paused is True
    assert (queue.counts.waiting, queue.counts.delayed, queue.counts.paused) == (1, 1, 1)
    assert list(queue.job_names) == [HEAVY, "user_variables_update", "statistics_aggregation"]
    assert queue.concurrency == 50
    assert not queue.HasField("rate_limit")
    assert queue.workers == 0
    assert queue.degraded is False


async def test_get_queue_carries_the_declared_rate_limit(
    admin_server: AdminServer, redis: Redis, spec: QueueSpec
) -> None:
    limited = QueueSpec(name="notify", functions=spec.functions, concurrency=4, rate_limit=RateLimit(30, 1.0))
    await declare(redis, limited)
    queue = await admin_server.stub.GetQueue(Q.GetQueueRequest(queue="notify"), timeout=5)
    assert (queue.rate_limit.max_jobs, queue.rate_limit.period_ms, queue.concurrency) == (30, 1000, 4)
    names = [q.name for q in (await admin_server.stub.ListQueues(Q.ListQueuesRequest(), timeout=5)).queues]
    assert names == ["notify", "workflow"]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.GetQueue(Q.GetQueueRequest(queue="nope"), timeout=5),
        lambda s: s.EnqueueJob(Q.EnqueueJobRequest(queue="nope", name=HEAVY), timeout=5),
        lambda s: s.ListJobs(Q.ListJobsRequest(queue="nope", state=Q.JOB_STATE_WAITING), timeout=5),
        lambda s: s.PauseQueue(Q.QueueRef(queue="nope"), timeout=5),
        lambda s: s.GetJob(Q.JobRef(queue="workflow", job_id="missing"), timeout=5),
        lambda s: s.RetryJob(Q.JobRef(queue="workflow", job_id="missing"), timeout=5),
        lambda s: s.RemoveJob(Q.JobRef(queue="workflow", job_id="missing"), timeout=5),
    ],
    ids=["get-queue", "enqueue", "list-jobs", "pause", "get-job", "retry", "remove"],
)
async def test_unknown_queue_or_job_is_not_found(admin_server: AdminServer, call: Any) -> None:
    error = await rpc_error(call(admin_server.stub))
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "no_such_job"}, "name"),
        ({"name": ""}, "name"),
        ({"data_json": "{not json"}, "data_json"),
        ({"data_json": "[1, 2]"}, "data_json"),
        ({"data_json": '{"unexpected": 1}'}, "data_json.unexpected"),
        ({"data_json": '{"duration_ms": "abc"}'}, "data_json.duration_ms"),
        ({"priority": 11}, "priority"),
        ({"priority": -1}, "priority"),
        ({"delay_ms": -5}, "delay_ms"),
        ({"attempts": -1}, "attempts"),
        ({"attempts": 5000}, "attempts"),
        ({"job_id": "has spaces"}, "job_id"),
    ],
)
async def test_bad_enqueue_is_invalid_argument_naming_the_field_and_enqueues_nothing(
    admin_server: AdminServer, layer: QueueAdmin, redis: Redis, fields: dict[str, Any], field: str
) -> None:
    request = Q.EnqueueJobRequest(**{"queue": "workflow", "name": HEAVY, **fields})
    error = await rpc_error(admin_server.stub.EnqueueJob(request, timeout=5))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error)["field"] == field
    assert (error.details() or "").startswith(f"{field}: ")
    counts = await layer.counts()
    assert counts.waiting + counts.delayed == 0
    assert await redis.keys("sbq:v3:{workflow}:j:*") == []


async def test_an_existing_job_id_is_already_exists_and_the_first_job_is_kept(
    admin_server: AdminServer, layer: QueueAdmin
) -> None:
    assert await enqueue(admin_server, job_id="nightly-1", data_json='{"duration_ms": 5}') == "nightly-1"
    error = await rpc_error(enqueue(admin_server, job_id="nightly-1", data_json='{"duration_ms": 9}'))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    job = await layer.job("nightly-1")
    assert job.data == {"duration_ms": 5}


async def test_get_job_shows_data_priority_attempts_and_due_time(admin_server: AdminServer) -> None:
    job_id = await enqueue(admin_server, data_json='{"duration_ms": 250}', priority=7, attempts=4, delay_ms=30_000)
    job = await admin_server.stub.GetJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5)
    assert (job.job_id, job.name, job.queue) == (job_id, HEAVY, "workflow")
    assert job.state == Q.JOB_STATE_DELAYED
    assert json.loads(job.data_json) == {"duration_ms": 250}
    assert (job.priority, job.attempts, job.max_attempts) == (7, 0, 4)
    assert job.enqueued_at_ms > 0
    assert job.started_at_ms == 0
    assert job.finished_at_ms == 0
    assert 29_000 < job.run_at_ms - job.enqueued_at_ms <= 30_500
    assert job.progress_json == ""
    assert job.result_json == ""
    assert list(job.errors) == []


async def test_list_jobs_pages_waiting_jobs_in_start_order(admin_server: AdminServer) -> None:
    low = [await enqueue(admin_server, priority=1) for _ in range(3)]
    high = await enqueue(admin_server, priority=9)
    page = Q.ListJobsRequest(queue="workflow", state=Q.JOB_STATE_WAITING, page=common_pb2.PageRequest(page_size=2))
    first = await admin_server.stub.ListJobs(page, timeout=5)
    assert [j.job_id for j in first.jobs] == [high, low[0]]
    assert (first.page.page, first.page.page_size, first.page.total) == (1, 2, 4)
    page.page.page = 2
    second = await admin_server.stub.ListJobs(page, timeout=5)
    assert [j.job_id for j in second.jobs] == low[1:]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (Q.ListJobsRequest(queue="workflow"), "state"),
        (Q.ListJobsRequest(queue="workflow", state=Q.JOB_STATE_FAILED, page=common_pb2.PageRequest(page=-1)), "page"),
        (
            Q.ListJobsRequest(queue="workflow", state=Q.JOB_STATE_FAILED, page=common_pb2.PageRequest(page_size=5000)),
            "page_size",
        ),
        (Q.ListJobsRequest(queue="bad name!", state=Q.JOB_STATE_FAILED), "queue"),
    ],
)
async def test_bad_listing_is_invalid_argument(
    admin_server: AdminServer, request_: Q.ListJobsRequest, field: str
) -> None:
    error = await rpc_error(admin_server.stub.ListJobs(request_, timeout=5))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error)["field"] == field


async def test_promote_makes_a_delayed_job_waiting(admin_server: AdminServer) -> None:
    job_id = await enqueue(admin_server, delay_ms=60_000)
    reply = await admin_server.stub.PromoteJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5)
    assert reply.job.state == Q.JOB_STATE_WAITING
    error = await rpc_error(admin_server.stub.PromoteJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_retry_of_a_job_that_did_not_finish_is_failed_precondition(admin_server: AdminServer) -> None:
    job_id = await enqueue(admin_server)
    error = await rpc_error(admin_server.stub.RetryJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_remove_deletes_the_job(admin_server: AdminServer, layer: QueueAdmin) -> None:
    job_id = await enqueue(admin_server)
    reply = await admin_server.stub.RemoveJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5)
    assert reply.removed is True
    assert (await layer.counts()).waiting == 0
    error = await rpc_error(admin_server.stub.GetJob(Q.JobRef(queue="workflow", job_id=job_id), timeout=5))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_drain_removes_waiting_and_delayed_jobs(admin_server: AdminServer, layer: QueueAdmin) -> None:
    for delay in (0, 0, 50_000):
        await enqueue(admin_server, delay_ms=delay)
    reply = await admin_server.stub.DrainQueue(Q.QueueRef(queue="workflow"), timeout=5)
    assert reply.removed == 3
    counts = await layer.counts()
    assert counts.waiting + counts.delayed == 0


async def test_clean_removes_by_state_age_and_limit(admin_server: AdminServer, layer: QueueAdmin) -> None:
    for _ in range(5):
        await enqueue(admin_server, delay_ms=40_000)
    clean = Q.CleanQueueRequest(queue="workflow", state=Q.JOB_STATE_DELAYED, older_than_ms=60_000)
    assert (await admin_server.stub.CleanQueue(clean, timeout=5)).removed == 0  # none that old
    clean.older_than_ms, clean.limit = 0, 2
    assert (await admin_server.stub.CleanQueue(clean, timeout=5)).removed == 2
    clean.limit = 0
    assert (await admin_server.stub.CleanQueue(clean, timeout=5)).removed == 3
    assert (await layer.counts()).delayed == 0


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (Q.CleanQueueRequest(queue="workflow"), "state"),
        (Q.CleanQueueRequest(queue="workflow", state=Q.JOB_STATE_ACTIVE), "state"),
        (Q.CleanQueueRequest(queue="workflow", state=Q.JOB_STATE_FAILED, older_than_ms=-1), "older_than_ms"),
        (Q.CleanQueueRequest(queue="workflow", state=Q.JOB_STATE_FAILED, limit=-1), "limit"),
    ],
)
async def test_bad_clean_is_invalid_argument(
    admin_server: AdminServer, request_: Q.CleanQueueRequest, field: str
) -> None:
    error = await rpc_error(admin_server.stub.CleanQueue(request_, timeout=5))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error)["field"] == field


async def test_pause_and_resume_return_the_queue(admin_server: AdminServer, layer: QueueAdmin) -> None:
    await enqueue(admin_server)
    paused = await admin_server.stub.PauseQueue(Q.QueueRef(queue="workflow"), timeout=5)
    assert paused.paused is True
    assert paused.counts.paused == 1
    assert await layer.is_paused()
    listing = Q.ListJobsRequest(queue="workflow", state=Q.JOB_STATE_PAUSED)
    job = (await admin_server.stub.ListJobs(listing, timeout=5)).jobs[0]
    assert job.state == Q.JOB_STATE_PAUSED
    resumed = await admin_server.stub.ResumeQueue(Q.QueueRef(queue="workflow"), timeout=5)
    assert resumed.paused is False
    assert resumed.counts.paused == 0
    assert not await layer.is_paused()


async def test_no_job_is_paused_while_its_queue_runs(admin_server: AdminServer) -> None:
    job_id = await enqueue(admin_server)
    listing = await admin_server.stub.ListJobs(Q.ListJobsRequest(queue="workflow", state=Q.JOB_STATE_PAUSED), timeout=5)
    assert (list(listing.jobs), listing.page.total) == ([], 0)
    assert await admin_server.state_of(job_id) == Q.JOB_STATE_WAITING


async def test_health_without_workers_names_the_problem(admin_server: AdminServer) -> None:
    await enqueue(admin_server)
    health = await admin_server.stub.GetHealth(Q.GetHealthRequest(), timeout=5)
    assert health.redis_available is True
    (queue,) = health.queues
    assert (queue.queue, queue.healthy, queue.workers) == ("workflow", False, 0)
    assert "no live worker" in queue.detail
    assert queue.oldest_waiting_ms >= 0


@pytest.mark.parametrize(
    ("scope", "sees"), [(Scope.READ, False), (Scope.OPERATE, False), (Scope.ADMIN, True), (Scope.INTERNAL, True)]
)
async def test_job_tracebacks_reach_admins_and_the_internal_identity_only(scope: Scope, sees: bool) -> None:
    async def served_as(principal: Principal) -> bool:  # a call's own task, as grpc.aio runs one
        _CALLER.set(principal)
        return _sees_tracebacks()

    principal = Principal(f"key:{scope}", "api_key", granted_by(scope))
    assert await asyncio.create_task(served_as(principal)) is sees
    error = AttemptError(attempt=1, error="ValueError: bad", traceback="Traceback (most recent call last): …", at=1)
    job = JobInfo(
        job_id="j", name=HEAVY, queue="workflow", state=JobState.FAILED, priority=0, data={}, attempts=1,
        max_attempts=1, errors=[error], progress=None, result=None, enqueued_at=1, started_at=None,
        finished_at=None, rate_key=None,
    )  # fmt: skip
    (shown,) = job_pb(job, tracebacks=sees).errors
    assert (shown.error_type, shown.message, bool(shown.traceback)) == ("ValueError", "bad", sees)
