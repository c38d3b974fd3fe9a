"""Priorities and send times.

Priorities map onto the queue layer's 0..10 (higher starts first): low 0, normal 3, high 5,
critical 10. A notification is due now, after ``delay_ms``, or at ``send_at_ms`` (epoch ms);
giving both, a negative delay, or a time more than a year away is refused.
"""

from __future__ import annotations

from enum import StrEnum

from runtime.errors import InvalidArgument

MAX_AHEAD_MS = 365 * 24 * 3600 * 1000


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def parse(cls, value: str) -> Priority:
        if not value:
            return cls.NORMAL
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise InvalidArgument("priority", f"unknown priority {value!r} (low, normal, high, critical)") from None

    @property
    def queue_priority(self) -> int:
        return QUEUE_PRIORITY[self]


QUEUE_PRIORITY: dict[Priority, int] = {
    Priority.LOW: 0,
    Priority.NORMAL: 3,
    Priority.HIGH: 5,
    Priority.CRITICAL: 10,
}


def due_at_ms(delay_ms: int, send_at_ms: int, now_ms: int) -> int:
    """When the notification should go out (epoch ms); ``now_ms`` when it is due at once.

    A ``send_at_ms`` in the past means "now": a clock a little behind the caller's must not
    turn an immediate send into an error.
    """
    if delay_ms and send_at_ms:
        raise InvalidArgument("delayMs", "give either delayMs or sendAt, not both")
    if delay_ms < 0:
        raise InvalidArgument("delayMs", "must be >= 0")
    if delay_ms > MAX_AHEAD_MS:
        raise InvalidArgument("delayMs", "must be at most one year")
    if send_at_ms < 0:
        raise InvalidArgument("sendAt", "must be epoch milliseconds")
    if send_at_ms:
        if send_at_ms - now_ms > MAX_AHEAD_MS:
            raise InvalidArgument("sendAt", "must be at most one year ahead")
        return max(send_at_ms, now_ms)
    return now_ms + delay_ms
