"""Between the queue layer's plain data (:mod:`runtime.queue.models`) and ``switchboard.queue.v1``.

Pure functions, no I/O.  JSON documents (job data, progress, result, event details) travel as
strings; an attempt's ``error`` (``"Type: message"``) is split into ``error_type`` and
``message``.
"""

from __future__ import annotations

import time
from typing import Any

from switchboard.queue.v1 import queue_pb2

from runtime.errors import InvalidArgument
from runtime.queue import AttemptError, JobInfo, JobState, QueueCounts, QueueEvent
from runtime.queue.codec import dumps
from runtime.queue.registry import QueueDeclaration

__all__ = [
    "PROTO_FIELD",
    "counts_pb",
    "event_pb",
    "job_pb",
    "layer_state",
    "proto_invalid_argument",
    "queue_info_pb",
]

_STATE_PB: dict[JobState, queue_pb2.JobState.ValueType] = {
    JobState.WAITING: queue_pb2.JOB_STATE_WAITING,
    JobState.ACTIVE: queue_pb2.JOB_STATE_ACTIVE,
    JobState.DELAYED: queue_pb2.JOB_STATE_DELAYED,
    JobState.COMPLETED: queue_pb2.JOB_STATE_COMPLETED,
    JobState.FAILED: queue_pb2.JOB_STATE_FAILED,
}
_PB_STATE = {pb: state for state, pb in _STATE_PB.items()} | {queue_pb2.JOB_STATE_PAUSED: JobState.WAITING}

PROTO_FIELD = {"data": "data_json", "delay": "delay_ms", "grace": "older_than_ms"}
"""The queue layer's field names where the proto spells them differently."""


def layer_state(state: queue_pb2.JobState.ValueType, *, field: str = "state") -> JobState:
    """The layer's state for a request's state: PAUSED is WAITING (the waiting jobs of a paused
    queue; the servicer answers none while the queue runs)."""
    found = _PB_STATE.get(state)
    if found is None:
        names = ", ".join(queue_pb2.JobState.Name(s) for s in _PB_STATE)
        raise InvalidArgument(field, f"must be one of {names}")
    return found


def proto_invalid_argument(error: InvalidArgument) -> InvalidArgument:
    """The same error naming the request's proto field instead of the layer's argument.

    A path inside the job's data keeps its tail: ``data.duration_ms`` -> ``data_json.duration_ms``.
    """
    head, dot, tail = error.field.partition(".")
    renamed = PROTO_FIELD.get(head)
    return InvalidArgument(f"{renamed}{dot}{tail}", error.problem) if renamed else error


def _json(value: Any) -> str:
    return "" if value is None else dumps(value)


def counts_pb(counts: QueueCounts) -> queue_pb2.JobCounts:
    return queue_pb2.JobCounts(**counts.as_dict())


def queue_info_pb(
    declaration: QueueDeclaration, counts: QueueCounts, *, paused: bool, workers: int, degraded: bool
) -> queue_pb2.QueueInfo:
    info = queue_pb2.QueueInfo(
        name=declaration.name,
        paused=paused,
        counts=counts_pb(counts),
        concurrency=declaration.concurrency,
        job_names=declaration.job_names,
        workers=workers,
        degraded=degraded,
        job_data_schemas_json={name: dumps(schema) for name, schema in declaration.job_data_schemas().items()},
    )
    rate = declaration.rate_limit
    if rate is not None:
        info.rate_limit.CopyFrom(queue_pb2.RateLimit(max_jobs=rate.max_jobs, period_ms=rate.period_ms))
    return info


def _error_pb(error: AttemptError, *, traceback: bool) -> queue_pb2.JobError:
    kind, sep, message = error.error.partition(": ")
    if not sep or not kind.replace(".", "").replace("_", "").isalnum():
        kind, message = "", error.error
    return queue_pb2.JobError(
        attempt=error.attempt,
        error_type=kind,
        message=message,
        traceback=error.traceback if traceback else "",
        at_ms=error.at,
    )


def job_pb(job: JobInfo, *, paused: bool = False, run_at_ms: int = 0, tracebacks: bool = True) -> queue_pb2.Job:
    """The job; ``tracebacks`` False leaves its errors' tracebacks (server code and paths) out."""
    state = queue_pb2.JOB_STATE_PAUSED if paused and job.state is JobState.WAITING else _STATE_PB[job.state]
    return queue_pb2.Job(
        job_id=job.job_id,
        name=job.name,
        queue=job.queue,
        state=state,
        priority=job.priority,
        data_json=dumps(job.data),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        errors=[_error_pb(e, traceback=tracebacks) for e in job.errors],
        progress_json=_json(job.progress),
        result_json=_json(job.result),
        enqueued_at_ms=job.enqueued_at,
        started_at_ms=job.started_at or 0,
        finished_at_ms=job.finished_at or 0,
        run_at_ms=run_at_ms,
    )


def event_pb(event: QueueEvent, *, at_ms: int | None = None) -> queue_pb2.JobEvent:
    return queue_pb2.JobEvent(
        queue=event.queue,
        job_id=event.job_id,
        event=event.event,
        at_ms=at_ms if at_ms is not None else int(time.time() * 1000),
        detail_json=_json(event.extra or None),
    )
