"""Cron-style schedules of a queue (arq's ``cron``, BullMQ's repeatable jobs), pure part.

A :class:`Schedule` names a job of its queue and a standard five-field cron expression, read in
UTC (``"0 3 * * *"``: every day at 03:00 UTC; parsed by ``cronsim``). Declared on the queue's
:class:`~runtime.queue.spec.QueueSpec` (``schedules=``), it is run by every worker of that queue
(:class:`~runtime.queue.scheduler.Scheduler`) and still enqueued exactly once per tick,
however many workers run: each tick is taken in Redis by one atomic call.

Ticks are instants, ``tick_ms`` the epoch ms of one. A worker starts with the first tick after
its start; ticks missed while no worker ran are not made up, and when a worker finds several
ticks due at once (its clock jumped, or the loop was blocked) only the latest runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim, CronSimError

SCHEDULE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass(frozen=True, slots=True)
class Schedule:
    """Enqueue job ``job`` (a function of the queue) with ``data`` at every tick of ``cron``."""

    name: str
    cron: str
    job: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not SCHEDULE_NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"schedule name {self.name!r} must match {SCHEDULE_NAME_PATTERN.pattern}")
        try:
            CronSim(self.cron, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as exc:
            raise ValueError(f"schedule {self.name!r}: {self.cron!r} is not a cron expression ({exc})") from None

    def next_tick(self, after: datetime) -> datetime:
        """The first tick strictly after ``after`` (an aware datetime)."""
        tick: datetime = next(CronSim(self.cron, after.astimezone(UTC)))
        return tick

    def latest_due(self, pending: datetime, now: datetime) -> tuple[datetime | None, datetime]:
        """With ``pending`` the next tick not yet run: the latest tick due at ``now`` (None when
        ``pending`` is still ahead) and the next tick after it."""
        if pending > now:
            return None, pending
        due = pending
        following = self.next_tick(due)
        while following <= now:
            due, following = following, self.next_tick(following)
        return due, following

    def job_id(self, tick: datetime) -> str:
        return f"schedule:{self.name}:{tick_ms(tick)}"


def tick_ms(tick: datetime) -> int:
    return round(tick.timestamp() * 1000)


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
