"""Plain data the queue layer hands out: job states, job detail, queue counts, events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runtime.queue.keys import fixed_fields, running_attempt


class JobState(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    DELAYED = "delayed"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AttemptError:
    attempt: int
    error: str
    traceback: str
    at: int
    """Epoch ms."""


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One job as the admin API shows it; timestamps are epoch ms."""

    job_id: str
    name: str
    queue: str
    state: JobState
    priority: int
    data: dict[str, Any]
    attempts: int
    max_attempts: int
    errors: list[AttemptError]
    progress: Any
    result: Any
    enqueued_at: int
    started_at: int | None
    finished_at: int | None
    rate_key: str | None = None

    @classmethod
    def from_hash(cls, queue: str, job_id: str, state: JobState, h: dict[bytes, bytes]) -> JobInfo:
        """A job from its hash (``runtime.queue.keys``); an active job's ``l`` is its running lease.
        ``h`` holds a job: its packed fixed fields ``x`` are there."""

        def num(key: bytes) -> int | None:
            value = h.get(key)
            return int(value) if value is not None else None

        def js(key: bytes) -> Any:
            value = h.get(key)
            return json.loads(value) if value is not None else None

        fixed = fixed_fields(h[b"x"])
        errors = [AttemptError(**e) for e in (js(b"e") or [])]
        lease = h.get(b"l")
        last = running_attempt(lease) if lease is not None else None
        return cls(
            job_id=job_id,
            name=fixed.name,
            queue=queue,
            state=state,
            priority=fixed.priority,
            data=js(b"d") or {},
            attempts=last[1] if last else 0,
            max_attempts=fixed.max_attempts,
            errors=errors,
            progress=js(b"g"),
            result=js(b"r"),
            enqueued_at=fixed.enqueued_at,
            started_at=last[2] if last else None,
            finished_at=num(b"f"),
            rate_key=fixed.rate_key,
        )


@dataclass(frozen=True, slots=True)
class QueueCounts:
    waiting: int
    active: int
    delayed: int
    completed: int
    failed: int
    paused: int
    """Waiting jobs held back because the queue is paused (equals ``waiting`` while paused)."""

    def as_dict(self) -> dict[str, int]:
        return {
            "waiting": self.waiting,
            "active": self.active,
            "delayed": self.delayed,
            "completed": self.completed,
            "failed": self.failed,
            "paused": self.paused,
        }


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """``event`` is one of waiting, delayed, active, progress, completed, retrying, failed,
    stalled, removed, drained, paused, resumed."""

    queue: str
    event: str
    job_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, queue: str, raw: bytes | str) -> QueueEvent:
        payload = json.loads(raw)
        return cls(queue, payload.pop("event"), payload.pop("jobId"), payload)
