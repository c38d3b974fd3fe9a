"""The database adapter of what belongs to a user: in-app messages and Web Push subscriptions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from services.notify.records import InAppMessage, PushSubscription
from services.notify.tables import InAppRow, PushSubscriptionRow


def _message(row: Any) -> InAppMessage:
    return InAppMessage(
        id=row.id,
        user_id=row.user_id,
        notification_id=row.notification_id,
        subject=row.subject,
        body=row.body,
        data=json.loads(row.data),
        read=bool(row.read),
        created_at_ms=row.created_at_ms,
        read_at_ms=row.read_at_ms,
    )


def _subscription(row: Any) -> PushSubscription:
    return PushSubscription(
        id=row.id,
        user_id=row.user_id,
        endpoint=row.endpoint,
        p256dh=row.p256dh,
        auth=row.auth,
        user_agent=row.user_agent,
        created_at_ms=row.created_at_ms,
    )


class UserStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    # ---- in-app -----------------------------------------------------------------------------
    async def add_message(
        self, *, user_id: str, notification_id: str, subject: str, body: str, data: dict[str, Any], now_ms: int
    ) -> tuple[InAppMessage, bool]:
        """Store the in-app message of a notification once: a retried delivery gets the stored
        one back (``False``: it was there already)."""
        row = {
            "id": uuid.uuid4().hex,
            "user_id": user_id,
            "notification_id": notification_id,
            "subject": subject,
            "body": body,
            "data": json.dumps(data),
            "read": False,
            "created_at_ms": now_ms,
            "read_at_ms": 0,
        }
        try:
            async with self.sessions.begin() as session:
                await session.execute(insert(InAppRow), [row])
            return _message(_Row(row)), True
        except IntegrityError:
            async with self.engine.connect() as connection:
                existing = (
                    await connection.execute(
                        select(InAppRow.__table__).where(InAppRow.notification_id == notification_id)
                    )
                ).one()
            return _message(existing), False

    async def inbox(
        self, user_id: str, *, unread_only: bool, offset: int, limit: int
    ) -> tuple[list[InAppMessage], int, int]:
        """One page of the user's messages (newest first), the unread count and the total listed."""
        table = InAppRow.__table__
        where = [InAppRow.user_id == user_id]
        if unread_only:
            where.append(InAppRow.read.is_(False))
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(table)
                    .where(*where)
                    .order_by(InAppRow.created_at_ms.desc(), InAppRow.id)
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
            total = await connection.scalar(select(func.count()).select_from(table).where(*where))
            unread = await connection.scalar(
                select(func.count()).select_from(table).where(InAppRow.user_id == user_id, InAppRow.read.is_(False))
            )
        return [_message(r) for r in rows], int(unread or 0), int(total or 0)

    async def mark_read(self, user_id: str, ids: Sequence[str], *, all_messages: bool, now_ms: int) -> int:
        """Mark the user's unread messages read (only theirs); returns how many changed."""
        query = update(InAppRow).where(InAppRow.user_id == user_id, InAppRow.read.is_(False))
        if not all_messages:
            if not ids:
                return 0
            query = query.where(InAppRow.id.in_(list(ids)))
        async with self.sessions.begin() as session:
            result = await session.execute(query.values(read=True, read_at_ms=now_ms))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # ---- push subscriptions -----------------------------------------------------------------
    async def register(
        self, *, user_id: str, endpoint: str, p256dh: str, auth: str, user_agent: str, now_ms: int
    ) -> str:
        """Store a subscription; registering an endpoint again updates it and keeps its id."""
        async with self.sessions.begin() as session:
            existing = await session.scalar(
                select(PushSubscriptionRow.id).where(PushSubscriptionRow.endpoint == endpoint)
            )
            values = {"user_id": user_id, "p256dh": p256dh, "auth": auth, "user_agent": user_agent}
            if existing is not None:
                await session.execute(
                    update(PushSubscriptionRow).where(PushSubscriptionRow.id == existing).values(**values)
                )
                return str(existing)
            subscription_id = uuid.uuid4().hex
            await session.execute(
                insert(PushSubscriptionRow),
                [{"id": subscription_id, "endpoint": endpoint, "created_at_ms": now_ms, **values}],
            )
            return subscription_id

    async def unregister(self, *, subscription_id: str = "", endpoint: str = "") -> bool:
        conditions = []
        if subscription_id:
            conditions.append(PushSubscriptionRow.id == subscription_id)
        if endpoint:
            conditions.append(PushSubscriptionRow.endpoint == endpoint)
        if not conditions:
            return False
        async with self.sessions.begin() as session:
            result = await session.execute(delete(PushSubscriptionRow).where(or_(*conditions)))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def subscriptions(self, user_id: str) -> list[PushSubscription]:
        return (await self.subscriptions_of([user_id])).get(user_id, [])

    async def subscriptions_of(self, user_ids: Sequence[str]) -> dict[str, list[PushSubscription]]:
        """The subscriptions of each of ``user_ids`` that has any, oldest first, in one query."""
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(PushSubscriptionRow.__table__)
                    .where(PushSubscriptionRow.user_id.in_(user_ids))
                    .order_by(PushSubscriptionRow.created_at_ms)
                )
            ).all()
        found: dict[str, list[PushSubscription]] = {}
        for row in rows:
            found.setdefault(row.user_id, []).append(_subscription(row))
        return found


class _Row:
    """Attribute access to a dict (a just-inserted row, read back without a query)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
