"""``/api/queues/*`` and ``/api/queue/stats``: the queue admin service over HTTP/JSON.

Successes are ``{"success": true, "data": …}`` (lists add ``meta.count``; job listings add
``meta.page`` {page, pageSize, total}); failures go through :mod:`gateway.errors` like every other
route: an unknown queue or job is 404, bad input 400 naming the JSON field (``name``, ``data``,
``priority``, ``delayMs``, ``jobId``, ``attempts``, ``state``, ``page``, ``pageSize``,
``olderThanMs``, ``limit``), an existing job id 409, a job in the wrong state for the action 400
(FAILED_PRECONDITION). ``/api/queues/events`` relays ``WatchEvents`` as Server-Sent Events: a
``ready`` event once the subscription is live (the moment to (re)load counts), then one ``job``
event per queue event.
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, TypeVar

import grpc
import grpc.aio
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from switchboard.common.v1 import common_pb2
from switchboard.queue.v1 import queue_pb2, queue_pb2_grpc

from gateway import sse_relay
from gateway.backend_calls import naming_json_field, rpc_timeout
from gateway.queues_json import (
    JSON_FIELD,
    event_json,
    health_json,
    job_json,
    job_summary_json,
    queue_json,
    state_from_name,
    stats_json,
)
from gateway.responses import ok
from gateway.schemas_queues import (
    Cleaned,
    Enqueued,
    Job,
    JobQueue,
    JobQueueDetail,
    JobSummary,
    QueuesHealth,
    QueuesStats,
    RemovedJob,
    RetriedFailed,
)
from gateway.settings import GatewaySettings
from runtime.auth import Scope
from runtime.auth.http import requires
from runtime.auth.scopes import Principal
from runtime.errors import InvalidArgument

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["queues"], dependencies=[requires(Scope.READ)])
T = TypeVar("T")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class JobStateName(enum.StrEnum):
    """A job's state in JSON. ``paused``: waiting in a paused queue (BullMQ's meaning); a listing
    of ``waiting`` jobs includes them (``counts.paused`` is part of ``counts.waiting``)."""

    waiting = "waiting"
    paused = "paused"
    active = "active"
    delayed = "delayed"
    completed = "completed"
    failed = "failed"


class EnqueueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Job function name, e.g. heavy_workflow_execution.")
    data: dict[str, Any] = Field(default_factory=dict, description="The job's keyword arguments (JSON object).")
    priority: int = Field(default=0, ge=INT32_MIN, le=INT32_MAX, description="0 (lowest) to 10 (highest).")
    delayMs: int = Field(
        default=0, ge=INT64_MIN, le=INT64_MAX, description="Start no earlier than this many ms from now."
    )
    jobId: str | None = Field(default=None, description="Optional id; an existing one is refused with 409.")
    attempts: int | None = Field(
        default=None, le=INT32_MAX, description="Attempts before the job fails; default: the queue's."
    )


class CleanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: JobStateName = JobStateName.completed
    olderThanMs: int | None = Field(
        default=None, ge=INT64_MIN, le=INT64_MAX, description="Only jobs finished (or enqueued) longer ago."
    )
    graceMs: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX, description="Alias of olderThanMs.")
    limit: int = Field(default=0, ge=INT32_MIN, le=INT32_MAX, description="At most this many; 0: no limit.")


def _stub(request: Request) -> queue_pb2_grpc.QueueAdminAsyncStub:
    stub: queue_pb2_grpc.QueueAdminAsyncStub = request.app.state.backends.queue_admin
    return stub


def _admin(request: Request) -> bool:
    """Whether the caller may read job tracebacks (server code and paths): admins only."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal is not None and principal.allows(Scope.ADMIN)


@router.get(
    "/queues", response_model=list[JobQueue], summary="Every declared queue with its counts, limits and workers"
)
async def list_queues(request: Request) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).ListQueues(queue_pb2.ListQueuesRequest(), timeout=rpc_timeout(request)), JSON_FIELD
    )
    queues = [queue_json(q) for q in reply.queues]
    return ok(queues, count=len(queues))


@router.get("/queue/stats", response_model=QueuesStats, summary="Counts of every queue and their totals")
async def queue_stats(request: Request) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).ListQueues(queue_pb2.ListQueuesRequest(), timeout=rpc_timeout(request)), JSON_FIELD
    )
    return ok(stats_json(list(reply.queues)))


@router.get(
    "/queues/health",
    response_model=QueuesHealth,
    summary="Redis reachability and, per queue, workers, backlog age, spooling",
)
async def queues_health(request: Request) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).GetHealth(queue_pb2.GetHealthRequest(), timeout=rpc_timeout(request)), JSON_FIELD
    )
    return ok(health_json(reply))


def _frame(message: queue_pb2.JobEvent) -> ServerSentEvent | None:
    if message.subscribed:  # the stream's own "live" marker: `ready`, said first, says it
        return None
    return sse_relay.event("job", event_json(message))


@router.get(
    "/queues/events",
    summary="Server-Sent Events: `ready`, then a `job` event per queue event (waiting, active, progress, …)",
    response_class=EventSourceResponse,
)
async def events(
    request: Request,
    queue: Annotated[list[str] | None, Query(description="Only these queues.")] = None,
) -> EventSourceResponse:
    settings: GatewaySettings = request.app.state.settings
    call = _stub(request).WatchEvents(queue_pb2.WatchEventsRequest(queues=queue or []))
    try:
        # Headers arrive once the subscription is live; a refusal is a plain HTTP error, not a broken stream.
        await naming_json_field(call.initial_metadata(), JSON_FIELD)
    except BaseException:
        call.cancel()
        raise
    if call.done() and await call.code() != grpc.StatusCode.OK:
        await naming_json_field(call.read(), JSON_FIELD)  # raises the backend's error
    return EventSourceResponse(
        sse_relay.relay(call, _frame),
        ping=int(settings.sse_ping_seconds),
        headers=sse_relay.UNBUFFERED,
    )


@router.get("/queues/{queue}", response_model=JobQueueDetail, summary="One queue")
async def get_queue(request: Request, queue: str) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).GetQueue(queue_pb2.GetQueueRequest(queue=queue), timeout=rpc_timeout(request)), JSON_FIELD
    )
    return ok(queue_json(reply, with_schemas=True))


@router.get(
    "/queues/{queue}/jobs",
    response_model=list[JobSummary],
    summary="Jobs of one state, a page at a time (without data and result: see the job itself)",
)
async def list_jobs(
    request: Request,
    queue: str,
    state: Annotated[JobStateName, Query(description="Which jobs.")] = JobStateName.waiting,
    page: Annotated[int, Query(ge=1, le=INT32_MAX, description="1-based page.")] = 1,
    pageSize: Annotated[int, Query(ge=1, le=1000, description="Jobs per page.")] = 50,
) -> JSONResponse:
    grpc_request = queue_pb2.ListJobsRequest(
        queue=queue,
        state=state_from_name(state.value),
        page=common_pb2.PageRequest(page=page, page_size=pageSize),
    )
    reply = await naming_json_field(_stub(request).ListJobs(grpc_request, timeout=rpc_timeout(request)), JSON_FIELD)
    jobs = [job_summary_json(j, tracebacks=_admin(request)) for j in reply.jobs]
    info = {"page": reply.page.page, "pageSize": reply.page.page_size, "total": reply.page.total}
    return ok(jobs, count=len(jobs), page=info)


@router.post(
    "/queues/{queue}/jobs",
    response_model=Enqueued,
    summary="Enqueue a named job (operators re-running work by hand)",
    dependencies=[requires(Scope.OPERATE)],
)
async def enqueue_job(request: Request, queue: str, body: EnqueueBody) -> JSONResponse:
    if body.attempts is not None and body.attempts < 1:
        raise InvalidArgument("attempts", "must be >= 1")
    grpc_request = queue_pb2.EnqueueJobRequest(
        queue=queue,
        name=body.name,
        data_json=json.dumps(body.data, ensure_ascii=False, separators=(",", ":")),
        priority=body.priority,
        delay_ms=body.delayMs,
        job_id=body.jobId or "",
        attempts=body.attempts or 0,
    )
    reply = await naming_json_field(_stub(request).EnqueueJob(grpc_request, timeout=rpc_timeout(request)), JSON_FIELD)
    # spooled: durable on the queue service's disk while Redis is unreachable; reaches Redis later.
    return ok({"jobId": reply.job_id, "spooled": reply.spooled})


@router.get(
    "/queues/{queue}/jobs/{job_id}", response_model=Job, summary="One job with its data, errors, progress and result"
)
async def get_job(request: Request, queue: str, job_id: str) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).GetJob(queue_pb2.JobRef(queue=queue, job_id=job_id), timeout=rpc_timeout(request)), JSON_FIELD
    )
    return ok(job_json(reply, tracebacks=_admin(request)))


@router.post(
    "/queues/{queue}/jobs/{job_id}/retry",
    response_model=Job,
    summary="Run a failed or completed job again",
    dependencies=[requires(Scope.OPERATE)],
)
async def retry_job(request: Request, queue: str, job_id: str) -> JSONResponse:
    ref = queue_pb2.JobRef(queue=queue, job_id=job_id)
    reply = await naming_json_field(_stub(request).RetryJob(ref, timeout=rpc_timeout(request)), JSON_FIELD)
    return ok(job_json(reply.job, tracebacks=_admin(request)))


@router.post(
    "/queues/{queue}/jobs/{job_id}/promote",
    response_model=Job,
    summary="Make a delayed job due now",
    dependencies=[requires(Scope.OPERATE)],
)
async def promote_job(request: Request, queue: str, job_id: str) -> JSONResponse:
    ref = queue_pb2.JobRef(queue=queue, job_id=job_id)
    reply = await naming_json_field(_stub(request).PromoteJob(ref, timeout=rpc_timeout(request)), JSON_FIELD)
    return ok(job_json(reply.job, tracebacks=_admin(request)))


@router.post(
    "/queues/{queue}/jobs/{job_id}/remove",
    response_model=RemovedJob,
    summary="Delete a job that is not running",
    dependencies=[requires(Scope.ADMIN)],
)
async def remove_job(request: Request, queue: str, job_id: str) -> JSONResponse:
    ref = queue_pb2.JobRef(queue=queue, job_id=job_id)
    reply = await naming_json_field(_stub(request).RemoveJob(ref, timeout=rpc_timeout(request)), JSON_FIELD)
    return ok({"jobId": job_id, "removed": reply.removed})


@router.post(
    "/queues/{queue}/pause",
    response_model=JobQueue,
    summary="Workers stop taking new jobs; active ones finish",
    dependencies=[requires(Scope.OPERATE)],
)
async def pause_queue(request: Request, queue: str) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).PauseQueue(queue_pb2.QueueRef(queue=queue), timeout=rpc_timeout(request)), JSON_FIELD
    )
    return ok(queue_json(reply))


@router.post(
    "/queues/{queue}/resume",
    response_model=JobQueue,
    summary="Resume a paused queue",
    dependencies=[requires(Scope.OPERATE)],
)
async def resume_queue(request: Request, queue: str) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).ResumeQueue(queue_pb2.QueueRef(queue=queue), timeout=rpc_timeout(request)), JSON_FIELD
    )
    return ok(queue_json(reply))


@router.post(
    "/queues/{queue}/retry-failed",
    response_model=RetriedFailed,
    summary="Retry every failed job of the queue",
    dependencies=[requires(Scope.OPERATE)],
)
async def retry_failed(request: Request, queue: str) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).RetryFailed(queue_pb2.QueueRef(queue=queue), timeout=rpc_timeout(request)), JSON_FIELD
    )
    return ok({"retried": reply.retried})


@router.post(
    "/queues/{queue}/clean",
    response_model=Cleaned,
    summary="Remove jobs of a state older than a grace period",
    dependencies=[requires(Scope.ADMIN)],
)
async def clean_queue(request: Request, queue: str, body: Annotated[CleanBody | None, Body()] = None) -> JSONResponse:
    clean = body or CleanBody()
    if clean.olderThanMs is not None and clean.graceMs is not None and clean.olderThanMs != clean.graceMs:
        raise InvalidArgument("graceMs", "give olderThanMs or graceMs, not both")
    older = clean.olderThanMs if clean.olderThanMs is not None else (clean.graceMs or 0)
    grpc_request = queue_pb2.CleanQueueRequest(
        queue=queue, state=state_from_name(clean.state.value), older_than_ms=older, limit=clean.limit
    )
    reply = await naming_json_field(_stub(request).CleanQueue(grpc_request, timeout=rpc_timeout(request)), JSON_FIELD)
    return ok({"removed": reply.removed})
