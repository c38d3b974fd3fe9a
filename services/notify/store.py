"""The database adapter of notifications and their attempts.

The database is the record of every notification: ``Send`` inserts it before the job is queued,
the worker reads it, marks it sending, and records each attempt's outcome in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from runtime.errors import NotFound
from services.notify.domain.requests import Delivery
from services.notify.records import Accepted, Attempt, AttemptOutcome, Notification, State
from services.notify.tables import AttemptRow, NotificationRow

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000


def notification_from_row(row: Any, attempts: Sequence[Any] = ()) -> Notification:
    return Notification(
        id=row.id,
        channel=row.channel,
        to=row.recipient,
        subject=row.subject,
        text=row.body,
        html=row.html,
        parts=json.loads(row.parts),
        data=json.loads(row.data),
        template=row.template,
        priority=row.priority,
        state=State(row.state),
        max_attempts=row.max_attempts,
        idempotency_key=row.idempotency_key or "",
        last_error=row.last_error,
        provider_id=row.provider_id,
        created_at_ms=row.created_at_ms,
        due_at_ms=row.due_at_ms,
        delivered_at_ms=row.delivered_at_ms,
        next_attempt_at_ms=row.next_attempt_at_ms,
        attempts=[Attempt(a.attempt, a.at_ms, a.ok, a.error) for a in attempts],
    )


def _row(notification_id: str, delivery: Delivery, now_ms: int) -> dict[str, Any]:
    state = State.SCHEDULED if delivery.scheduled else State.QUEUED
    return {
        "id": notification_id,
        "channel": delivery.channel.value,
        "recipient": delivery.to,
        "subject": delivery.subject,
        "body": delivery.text,
        "html": delivery.html,
        "parts": json.dumps(list(delivery.parts)),
        "data": json.dumps(dict(delivery.data)),
        "template": delivery.template,
        "priority": delivery.priority.value,
        "state": state.value,
        "max_attempts": delivery.max_attempts,
        "idempotency_key": delivery.idempotency_key or None,
        "created_at_ms": now_ms,
        "due_at_ms": delivery.due_ms,
        "next_attempt_at_ms": delivery.due_ms,
    }


class NotificationStore:
    def __init__(self, engine: AsyncEngine, *, idempotency_window_ms: int = IDEMPOTENCY_WINDOW_MS) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.idempotency_window_ms = idempotency_window_ms

    async def create(self, notification_id: str, delivery: Delivery, now_ms: int) -> Accepted:
        """Insert the notification; with an idempotency key used within the window, answer the
        earlier notification instead (``created`` False) and insert nothing."""
        row = _row(notification_id, delivery, now_ms)
        state = State(row["state"])
        key = delivery.idempotency_key
        for _ in range(3):  # a concurrent sender with the same key may win the insert: read its row
            if key:
                earlier = await self._holder_of(key, now_ms)
                if earlier is not None:
                    return earlier
            try:
                async with self.sessions.begin() as session:
                    await session.execute(insert(NotificationRow), [row])
            except IntegrityError:
                if not key:
                    raise
                continue
            return Accepted(notification_id, state, created=True)
        raise RuntimeError(f"idempotency key {key!r} kept changing hands")

    async def create_many(self, deliveries: Sequence[tuple[str, Delivery]], now_ms: int) -> list[Accepted]:
        """Insert notifications without idempotency keys in one statement and one transaction."""
        if any(delivery.idempotency_key for _, delivery in deliveries):
            raise ValueError("create_many takes no idempotency keys: create() checks each one")
        rows = [_row(notification_id, delivery, now_ms) for notification_id, delivery in deliveries]
        if rows:
            async with self.sessions.begin() as session:
                await session.execute(insert(NotificationRow), rows)
        return [Accepted(row["id"], State(row["state"]), created=True) for row in rows]

    async def create_many_keyed(self, deliveries: Sequence[tuple[str, Delivery]], now_ms: int) -> list[Accepted]:
        """Notifications that carry idempotency keys: one query finds the keys' holders within the
        window (those answer instead, ``created`` False), then one transaction lets expired holders
        go of their keys and inserts the rest in one statement; a key repeated in the batch answers
        its first notification. Raises ``IntegrityError`` (nothing stored) when a concurrent sender
        took one of the keys in between: :meth:`create` then settles each one.

        The read is not in the write's transaction: on SQLite a transaction that reads, then
        writes after another connection wrote, fails at once instead of waiting for the lock."""
        keys = {delivery.idempotency_key for _, delivery in deliveries}
        if "" in keys:
            raise ValueError("create_many_keyed takes idempotency keys only")
        table = NotificationRow.__table__
        columns = (table.c.id, table.c.state, table.c.created_at_ms, table.c.idempotency_key)
        async with self.engine.connect() as connection:
            found = (await connection.execute(select(*columns).where(table.c.idempotency_key.in_(keys)))).all()
        expired = [h.id for h in found if now_ms - h.created_at_ms >= self.idempotency_window_ms]
        answers = {
            h.idempotency_key: Accepted(h.id, State(h.state), created=False) for h in found if h.id not in expired
        }
        rows: list[dict[str, Any]] = []
        out: list[Accepted] = []
        for notification_id, delivery in deliveries:
            key = delivery.idempotency_key
            if key in answers:
                out.append(answers[key])
                continue
            new = _row(notification_id, delivery, now_ms)
            rows.append(new)
            out.append(Accepted(notification_id, State(new["state"]), created=True))
            answers[key] = Accepted(notification_id, State(new["state"]), created=False)
        if rows:
            async with self.sessions.begin() as session:
                if expired:
                    await session.execute(
                        update(NotificationRow).where(NotificationRow.id.in_(expired)).values(idempotency_key=None)
                    )
                await session.execute(insert(NotificationRow), rows)
        return out

    async def _holder_of(self, key: str, now_ms: int) -> Accepted | None:
        """The notification holding ``key`` within the window; an expired holder lets go of it."""
        async with self.sessions.begin() as session:
            found = (
                await session.execute(
                    select(NotificationRow.id, NotificationRow.state, NotificationRow.created_at_ms).where(
                        NotificationRow.idempotency_key == key
                    )
                )
            ).first()
            if found is None:
                return None
            if now_ms - found.created_at_ms < self.idempotency_window_ms:
                return Accepted(found.id, State(found.state), created=False)
            await session.execute(
                update(NotificationRow).where(NotificationRow.id == found.id).values(idempotency_key=None)
            )
            return None

    async def discard(self, *notification_ids: str) -> None:
        """Remove notifications whose jobs could not be queued (the caller got an error)."""
        if not notification_ids:
            return
        async with self.sessions.begin() as session:
            await session.execute(delete(NotificationRow).where(NotificationRow.id.in_(notification_ids)))

    async def get(self, notification_id: str) -> Notification:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(select(NotificationRow.__table__).where(NotificationRow.id == notification_id))
            ).first()
            if row is None:
                raise NotFound(f"notification {notification_id!r} not found")
            attempts = (
                await connection.execute(
                    select(AttemptRow.__table__)
                    .where(AttemptRow.notification_id == notification_id)
                    .order_by(AttemptRow.id)
                )
            ).all()
        return notification_from_row(row, attempts)

    async def recent(self, limit: int = 50, channel: str = "") -> list[Notification]:
        """The newest notifications first (the admin page)."""
        query = select(NotificationRow.__table__).order_by(NotificationRow.created_at_ms.desc()).limit(limit)
        if channel:
            query = query.where(NotificationRow.channel == channel)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [notification_from_row(row) for row in rows]

    async def mark_sending(self, notification_id: str) -> None:
        await self._set_unfinished(notification_id, state=State.SENDING.value, next_attempt_at_ms=0)

    async def record_attempt(self, notification_id: str, outcome: AttemptOutcome) -> None:
        """One attempt's outcome and the state it leaves, in one transaction."""
        values: dict[str, Any] = {"state": outcome.state.value, "next_attempt_at_ms": outcome.next_attempt_at_ms}
        if outcome.state is State.DELIVERED:
            values["delivered_at_ms"] = outcome.at_ms
        if outcome.provider_id:
            values["provider_id"] = outcome.provider_id
        if outcome.error:
            values["last_error"] = outcome.error
        async with self.sessions.begin() as session:
            await session.execute(insert(AttemptRow), [outcome.attempt_row(notification_id)])
            await session.execute(update(NotificationRow).where(NotificationRow.id == notification_id).values(**values))

    async def mark_requeued(self, notification_id: str, *, reason: str, next_attempt_at_ms: int) -> None:
        """Sent back to the queue by a provider's rate limit: no attempt recorded."""
        await self._set_unfinished(
            notification_id, state=State.RETRYING.value, last_error=reason, next_attempt_at_ms=next_attempt_at_ms
        )

    async def _set(self, notification_id: str, **values: Any) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(NotificationRow).where(NotificationRow.id == notification_id).values(**values))

    async def _set_unfinished(self, notification_id: str, **values: Any) -> None:
        """Like ``_set``, but a delivered or failed notification keeps its state: a run that
        started before another finished it must not move it back."""
        finished = (State.DELIVERED.value, State.FAILED.value)
        async with self.sessions.begin() as session:
            await session.execute(
                update(NotificationRow)
                .where(NotificationRow.id == notification_id, NotificationRow.state.notin_(finished))
                .values(**values)
            )

    async def note_progress(self, notification_id: str, provider_id: str) -> None:
        """Parts of a multi-part message already sent (their provider ids)."""
        await self._set(notification_id, provider_id=provider_id)

    async def find_by_provider_id(self, channel: str, provider_id: str) -> Notification | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(NotificationRow.__table__).where(
                        NotificationRow.channel == channel, NotificationRow.provider_id == provider_id
                    )
                )
            ).first()
        return None if row is None else notification_from_row(row)

    async def finish(self, notification_id: str, *, state: State, error: str, at_ms: int) -> None:
        """A final state reported later by the provider (SMS delivery receipts)."""
        values: dict[str, Any] = {"state": state.value, "next_attempt_at_ms": 0}
        if state is State.DELIVERED:
            values["delivered_at_ms"] = at_ms
        if error:
            values["last_error"] = error
        await self._set(notification_id, **values)
