"""The ``/api/queues`` answers and SSE events as published schemas (see :mod:`gateway.api_schema`).

They describe what :mod:`gateway.queues_json` writes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.api_schema import At, DurationMs, Opaque, Schema

__all__ = [
    "Cleaned",
    "Enqueued",
    "Job",
    "JobEventData",
    "JobQueue",
    "JobQueueDetail",
    "JobSummary",
    "QueuesHealth",
    "QueuesStats",
    "RemovedJob",
    "RetriedFailed",
]

JobStateText = Literal["waiting", "paused", "active", "delayed", "completed", "failed"]


class JobCounts(Schema):
    waiting: int
    active: int
    delayed: int
    completed: int
    failed: int
    paused: int = Field(description="Waiting jobs held back by a paused queue (part of waiting).")


class RateLimit(Schema):
    max: int
    periodMs: DurationMs


class JobQueue(Schema):
    name: str
    isPaused: bool
    counts: JobCounts
    rateLimit: RateLimit | None
    concurrency: int
    jobNames: list[str]
    workers: int
    degraded: bool = Field(description="Enqueues are spooled to disk while Redis is unreachable.")


class JobQueueDetail(JobQueue):
    jobSchemas: dict[str, dict[str, Any]] = Field(description="Job name -> the JSON Schema its data must match.")


class QueueStatsRow(JobCounts):
    isPaused: bool


class QueuesStats(Schema):
    queues: dict[str, QueueStatsRow]
    totals: JobCounts


class QueueHealthRow(Schema):
    queue: str
    healthy: bool
    degraded: bool
    workers: int
    oldestWaitingMs: DurationMs
    detail: str


class QueuesHealth(Schema):
    redisAvailable: bool
    queues: list[QueueHealthRow]


class JobErrorRow(Schema):
    attempt: int
    type: str
    message: str
    traceback: str | None = Field(description="Server code and paths: admins only, null for others.")
    failedAt: At


class JobSummary(Schema):
    """A job in a listing: no data or result (the job itself has them)."""

    jobId: str
    name: str
    queue: str
    state: JobStateText
    priority: int
    attempts: int
    maxAttempts: int
    errors: list[JobErrorRow]
    progress: Opaque
    enqueuedAt: int
    startedAt: At
    finishedAt: At
    runAt: At


class Job(JobSummary):
    data: dict[str, Any]
    result: Opaque


class Enqueued(Schema):
    jobId: str
    spooled: bool = Field(description="Accepted into the durable disk spool; reaches Redis when it is back.")


class RemovedJob(Schema):
    jobId: str
    removed: bool


class RetriedFailed(Schema):
    retried: int


class Cleaned(Schema):
    removed: int


class JobEventData(Schema):
    """The ``job`` SSE event: one queue event (``detail`` {result} on completed, {progress} on progress)."""

    queue: str
    jobId: str
    event: str = Field(
        description="waiting, active, progress, completed, failed, retrying, stalled, removed, delayed, "
        "drained, paused, resumed, duplicate"
    )
    emittedAt: At
    detail: Opaque
