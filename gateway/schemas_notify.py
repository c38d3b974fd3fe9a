"""The notification answers and SSE events as published schemas (see :mod:`gateway.api_schema`).

They describe what :mod:`gateway.notify_json` and :mod:`gateway.routes_notify` write.
"""

from __future__ import annotations

from typing import Any, Literal

from gateway.api_schema import At, Schema

__all__ = [
    "DeliveryStatus",
    "InAppMessage",
    "Inbox",
    "LocalSinks",
    "MarkedRead",
    "NotificationIds",
    "PushRegistered",
    "PushRemoved",
    "SmsStatusAck",
    "VapidKey",
]


class DeliveryAttempt(Schema):
    attempt: int
    attemptedAt: At
    ok: bool
    error: str


class DeliveryStatus(Schema):
    notificationId: str
    channel: Literal["email", "telegram", "browser", "database", "sms", "unknown"]
    to: str
    subject: str
    priority: Literal["low", "normal", "high", "critical", ""]
    state: Literal["unspecified", "queued", "scheduled", "sending", "delivered", "retrying", "failed"]
    attempts: list[DeliveryAttempt]
    lastError: str
    createdAt: At
    deliveredAt: At
    nextAttemptAt: At


class InAppMessage(Schema):
    messageId: str
    userId: str
    subject: str
    body: str
    data: dict[str, str]
    read: bool
    createdAt: At
    readAt: At


class Inbox(Schema):
    messages: list[InAppMessage]
    unreadCount: int


class NotificationIds(Schema):
    notificationIds: list[str]


class SmsStatusAck(Schema):
    notificationId: str


class MarkedRead(Schema):
    updated: int


class PushRegistered(Schema):
    subscriptionId: str


class PushRemoved(Schema):
    removed: bool


class VapidKey(Schema):
    publicKey: str


class LocalSinks(Schema):
    """What ``make run``'s local providers received (a development aid; their own log records)."""

    email: list[dict[str, Any]]
    telegram: list[dict[str, Any]]
    browser: list[dict[str, Any]]
    sms: list[dict[str, Any]]
    pushServiceUrl: str
