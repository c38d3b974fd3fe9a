"""``switchboard.queue.v1`` messages as the gateway's JSON (the names other teams read).

A queue: ``name``, ``isPaused``, ``counts`` {waiting, active, delayed, completed, failed, paused},
``rateLimit`` ({max, periodMs} or null), ``concurrency``, ``jobNames``, ``workers``, ``degraded``
and, for one queue, ``jobSchemas`` (job name -> the JSON Schema its ``data`` must match).
A job: ``jobId``, ``name``, ``queue``, ``state`` (waiting, paused, active, delayed, completed,
failed: ``paused`` is a waiting job of a paused queue, as in BullMQ),
``priority``, ``data`` (parsed JSON), ``attempts`` (made), ``maxAttempts``, ``errors[]``
({attempt, type, message, traceback, failedAt}), ``progress``, ``result``, ``enqueuedAt``,
``startedAt``, ``finishedAt``, ``runAt`` (epoch ms, null when not yet).
"""

from __future__ import annotations

import json
from typing import Any

from switchboard.queue.v1 import queue_pb2

from runtime.errors import InvalidArgument

__all__ = [
    "COUNT_NAMES",
    "JSON_FIELD",
    "STATE_NAMES",
    "counts_json",
    "event_json",
    "health_json",
    "job_json",
    "queue_json",
    "state_from_name",
    "stats_json",
]

STATE_NAMES: dict[queue_pb2.JobState.ValueType, str] = {
    queue_pb2.JOB_STATE_WAITING: "waiting",
    queue_pb2.JOB_STATE_ACTIVE: "active",
    queue_pb2.JOB_STATE_DELAYED: "delayed",
    queue_pb2.JOB_STATE_COMPLETED: "completed",
    queue_pb2.JOB_STATE_FAILED: "failed",
    # A waiting job of a paused queue (BullMQ's meaning): it runs once the queue is resumed.
    queue_pb2.JOB_STATE_PAUSED: "paused",
}
_STATES_BY_NAME = {name: state for state, name in STATE_NAMES.items()}
COUNT_NAMES = ("waiting", "active", "delayed", "completed", "failed", "paused")

JSON_FIELD = {
    "data_json": "data",
    "delay_ms": "delayMs",
    "job_id": "jobId",
    "page_size": "pageSize",
    "older_than_ms": "olderThanMs",
    "queues": "queue",
}
"""The proto field a backend error names -> the JSON name the caller sent."""


def state_from_name(name: str, field: str = "state") -> queue_pb2.JobState.ValueType:
    found = _STATES_BY_NAME.get(name)
    if found is None:
        raise InvalidArgument(field, f"must be one of {', '.join(_STATES_BY_NAME)}")
    return found


def _parsed(text: str) -> Any:
    return json.loads(text) if text else None


def _ms(value: int) -> int | None:
    return value or None


def counts_json(counts: queue_pb2.JobCounts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in COUNT_NAMES}


def queue_json(queue: queue_pb2.QueueInfo, *, with_schemas: bool = False) -> dict[str, Any]:
    """A queue; ``with_schemas`` adds ``jobSchemas``: each job's data JSON Schema, by job name."""
    rate = queue.rate_limit if queue.HasField("rate_limit") else None
    schemas = {"jobSchemas": {n: json.loads(s) for n, s in sorted(queue.job_data_schemas_json.items())}}
    return {
        "name": queue.name,
        "isPaused": queue.paused,
        "counts": counts_json(queue.counts),
        "rateLimit": {"max": rate.max_jobs, "periodMs": rate.period_ms} if rate is not None else None,
        "concurrency": queue.concurrency,
        "jobNames": list(queue.job_names),
        "workers": queue.workers,
        "degraded": queue.degraded,
        **(schemas if with_schemas else {}),
    }


def _error_json(error: queue_pb2.JobError, tracebacks: bool) -> dict[str, Any]:
    return {
        "attempt": error.attempt,
        "type": error.error_type,
        "message": error.message,
        "traceback": (error.traceback or None) if tracebacks else None,
        "failedAt": _ms(error.at_ms),
    }


def job_json(job: queue_pb2.Job, *, tracebacks: bool = False) -> dict[str, Any]:
    """The job; its errors' ``traceback`` (server code and paths) is null unless ``tracebacks``
    (admins): every caller reads the error's ``type`` and ``message``."""
    return {
        "jobId": job.job_id,
        "name": job.name,
        "queue": job.queue,
        "state": STATE_NAMES.get(job.state, "waiting"),
        "priority": job.priority,
        "data": _parsed(job.data_json) or {},
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "errors": [_error_json(e, tracebacks) for e in job.errors],
        "progress": _parsed(job.progress_json),
        "result": _parsed(job.result_json),
        "enqueuedAt": job.enqueued_at_ms,
        "startedAt": _ms(job.started_at_ms),
        "finishedAt": _ms(job.finished_at_ms),
        "runAt": _ms(job.run_at_ms),
    }


def job_summary_json(job: queue_pb2.Job, *, tracebacks: bool = False) -> dict[str, Any]:
    """A job in a listing: no ``data`` or ``result`` (ListJobs leaves them out; the job's own
    route has them)."""
    summary = job_json(job, tracebacks=tracebacks)
    del summary["data"], summary["result"]
    return summary


def event_json(event: queue_pb2.JobEvent) -> dict[str, Any]:
    return {
        "queue": event.queue,
        "jobId": event.job_id,
        "event": event.event,
        "emittedAt": event.at_ms,
        "detail": _parsed(event.detail_json),
    }


def health_json(health: queue_pb2.GetHealthResponse) -> dict[str, Any]:
    return {
        "redisAvailable": health.redis_available,
        "queues": [
            {
                "queue": q.queue,
                "healthy": q.healthy,
                "degraded": q.degraded,
                "workers": q.workers,
                "oldestWaitingMs": q.oldest_waiting_ms,
                "detail": q.detail,
            }
            for q in health.queues
        ],
    }


def stats_json(queues: list[queue_pb2.QueueInfo]) -> dict[str, Any]:
    """``/api/queue/stats``: every queue's counts (and paused flag) plus the totals."""
    totals = dict.fromkeys(COUNT_NAMES, 0)
    per_queue: dict[str, dict[str, Any]] = {}
    for queue in queues:
        counts = counts_json(queue.counts)
        for name, value in counts.items():
            totals[name] += value
        per_queue[queue.name] = {**counts, "isPaused": queue.paused}
    return {"queues": per_queue, "totals": totals}
