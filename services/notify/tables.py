"""The notify service's tables: notifications with their attempts, in-app messages, push subscriptions.

Times are epoch milliseconds (BIGINT), as on the wire. ``notifications.idempotency_key`` is
unique: two concurrent sends with one key cannot both insert; a key older than the idempotency
window is released (set NULL on the old row) before a new notification takes it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class NotificationRow(Base):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    parts: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list: the Telegram messages."""
    data: Mapped[str] = mapped_column(Text, default="{}")
    template: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    max_attempts: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[str] = mapped_column(String(128), default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    due_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    next_attempt_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        Index("ix_notifications_created", "created_at_ms"),
        Index("ix_notifications_provider", "channel", "provider_id"),
    )


class AttemptRow(Base):
    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(String(32), ForeignKey("notifications.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_attempts_notification", "notification_id"),)


class InAppRow(Base):
    __tablename__ = "inapp_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    notification_id: Mapped[str] = mapped_column(String(32), unique=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[str] = mapped_column(Text, default="{}")
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    read_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_inapp_user_created", "user_id", "created_at_ms"),)


class PushSubscriptionRow(Base):
    __tablename__ = "push_subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(256))
    auth: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_push_user", "user_id"),)
