"""Plain data the notify stores hand out (no SQLAlchemy objects leave the adapters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (State.DELIVERED, State.FAILED)


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    at_ms: int
    ok: bool
    error: str


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """One delivery attempt's outcome and the state it leaves its notification in, as the
    stores record it (``record_attempt``)."""

    attempt: int
    at_ms: int
    state: State
    error: str = ""
    provider_id: str = ""
    next_attempt_at_ms: int = 0

    def attempt_row(self, notification_id: str) -> dict[str, Any]:
        """The attempt's row in ``notification_attempts``: failed when it names an error."""
        return {
            "notification_id": notification_id,
            "attempt": self.attempt,
            "at_ms": self.at_ms,
            "ok": not self.error,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    channel: str
    to: str
    subject: str
    text: str
    html: str
    parts: list[str]
    data: dict[str, Any]
    template: str
    priority: str
    state: State
    max_attempts: int
    idempotency_key: str
    last_error: str
    provider_id: str
    created_at_ms: int
    due_at_ms: int
    delivered_at_ms: int
    next_attempt_at_ms: int
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What ``Send`` answers: the notification's id and state; ``created`` is False when an
    earlier notification with the same idempotency key answered instead."""

    id: str
    state: State
    created: bool


@dataclass(frozen=True, slots=True)
class InAppMessage:
    id: str
    user_id: str
    notification_id: str
    subject: str
    body: str
    data: dict[str, Any]
    read: bool
    created_at_ms: int
    read_at_ms: int


@dataclass(frozen=True, slots=True)
class PushSubscription:
    id: str
    user_id: str
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str
    created_at_ms: int

    def info(self) -> dict[str, Any]:
        """The browser's PushSubscription JSON, as pywebpush takes it."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}
