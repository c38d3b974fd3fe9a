"""What a notify worker reads and writes per delivery, batched across the worker's jobs.

Each delivery reads its notification, marks it sending and records its attempt (or requeue, or a
part sent). One at a time, that is three or four SQLite transactions per message, each a round
of thread hops through aiosqlite, with every worker process contending for the one write lock.
:class:`BatchedDeliveryStore` gives the jobs the same calls but coalesces them: reads asked for in
the same turn of the event loop are one ``SELECT … WHERE id IN (…)`` (``coalesce.py``), and writes queued while the
previous batch commits are the next batch's one transaction (group commit), applied in the order
they were asked, consecutive writes of one kind as one ``executemany``. A caller's write has
committed when its call returns; a batch that fails fails every caller in it (each job is retried
as it would be after its own failed write).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import BigInteger, String, Table, Text, and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.errors import NotFound
from services.notify.coalesce import Coalescer, settle
from services.notify.records import AttemptOutcome, Notification, State
from services.notify.store import notification_from_row
from services.notify.tables import AttemptRow, NotificationRow

Kind = Literal["sending", "attempt", "requeued", "progress"]

_NOTIFICATIONS = cast(Table, NotificationRow.__table__)
_ATTEMPTS = cast(Table, AttemptRow.__table__)
# Two comparisons, not NOT IN: an expanding IN list cannot be used with executemany.
_UNFINISHED = and_(_NOTIFICATIONS.c.state != State.DELIVERED.value, _NOTIFICATIONS.c.state != State.FAILED.value)
_BY_ID = _NOTIFICATIONS.c.id == bindparam("b_id", type_=String)
_STATE, _NEXT = bindparam("b_state", type_=String), bindparam("b_next", type_=BigInteger)
_ERROR, _PROVIDER = bindparam("b_error", type_=Text), bindparam("b_provider", type_=String)

# One statement per kind of write, executed with a list of parameter sets. A delivered or failed
# notification keeps its state against a late "sending" or "requeued" (a run that started before
# another finished it).
_STATEMENTS = {
    "sending": update(_NOTIFICATIONS)
    .where(_BY_ID, _UNFINISHED)
    .values(state=State.SENDING.value, next_attempt_at_ms=0),
    "requeued": update(_NOTIFICATIONS)
    .where(_BY_ID, _UNFINISHED)
    .values(state=State.RETRYING.value, last_error=_ERROR, next_attempt_at_ms=_NEXT),
    "progress": update(_NOTIFICATIONS).where(_BY_ID).values(provider_id=_PROVIDER),
    "attempt": update(_NOTIFICATIONS)
    .where(_BY_ID)
    .values(
        state=_STATE,
        next_attempt_at_ms=_NEXT,
        delivered_at_ms=func.coalesce(bindparam("b_delivered", type_=BigInteger), _NOTIFICATIONS.c.delivered_at_ms),
        provider_id=func.coalesce(_PROVIDER, _NOTIFICATIONS.c.provider_id),
        last_error=func.coalesce(_ERROR, _NOTIFICATIONS.c.last_error),
    ),
}


@dataclass(frozen=True, slots=True)
class Write:
    kind: Kind
    params: Mapping[str, Any]
    attempt_row: Mapping[str, Any] | None = None
    """``attempt``: the attempt's row (``notification_attempts``)."""


async def load_many(engine: AsyncEngine, notification_ids: Sequence[str]) -> dict[str, Notification]:
    """The notifications found among ``notification_ids`` (without their attempts), in one query."""
    async with engine.connect() as connection:
        rows = (await connection.execute(select(_NOTIFICATIONS).where(_NOTIFICATIONS.c.id.in_(notification_ids)))).all()
    return {row.id: notification_from_row(row) for row in rows}


async def apply_writes(engine: AsyncEngine, writes: Sequence[Write]) -> None:
    """Every write in one transaction, in order; consecutive writes of one kind as one executemany."""
    async with engine.begin() as connection:
        for kind, run in itertools.groupby(writes, key=lambda w: w.kind):
            group = list(run)
            if kind == "attempt":
                await connection.execute(insert(_ATTEMPTS), [dict(w.attempt_row or {}) for w in group])
            await connection.execute(_STATEMENTS[kind], [dict(w.params) for w in group])


def attempt_write(notification_id: str, outcome: AttemptOutcome) -> Write:
    return Write(
        "attempt",
        {
            "b_id": notification_id,
            "b_state": outcome.state.value,
            "b_next": outcome.next_attempt_at_ms,
            "b_delivered": outcome.at_ms if outcome.state is State.DELIVERED else None,
            "b_provider": outcome.provider_id or None,
            "b_error": outcome.error or None,
        },
        outcome.attempt_row(notification_id),
    )


class BatchedDeliveryStore:
    """The worker's reads and writes of notifications, coalesced (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reads: Coalescer[str, Notification] = Coalescer(
            lambda ids: load_many(engine, ids), lambda nid: NotFound(f"notification {nid!r} not found")
        )
        self._writes: list[tuple[Write, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def get(self, notification_id: str) -> Notification:
        return await self._reads.get(notification_id)

    async def _write(self, write: Write) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append((write, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        await future

    async def _write_batches(self) -> None:
        while self._writes:
            await asyncio.sleep(0)
            batch, self._writes = self._writes, []
            try:
                await apply_writes(self.engine, [write for write, _ in batch])
            except Exception as exc:
                settle([future for _, future in batch], exception=exc)
            else:
                settle([future for _, future in batch], result=None)

    async def mark_sending(self, notification_id: str) -> None:
        await self._write(Write("sending", {"b_id": notification_id}))

    async def mark_requeued(self, notification_id: str, *, reason: str, next_attempt_at_ms: int) -> None:
        """Sent back to the queue by a rate limit: no attempt recorded."""
        await self._write(Write("requeued", {"b_id": notification_id, "b_error": reason, "b_next": next_attempt_at_ms}))

    async def note_progress(self, notification_id: str, provider_id: str) -> None:
        """Parts of a multi-part message already sent (their provider ids)."""
        await self._write(Write("progress", {"b_id": notification_id, "b_provider": provider_id}))

    async def record_attempt(self, notification_id: str, outcome: AttemptOutcome) -> None:
        """One attempt's outcome and the state it leaves."""
        await self._write(attempt_write(notification_id, outcome))
