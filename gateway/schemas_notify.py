"""The notification answers and SSE events as published schemas (see :mod:`gateway.api_schema`).

They describe what :mod:`gateway.notify_json` and :mod:`gateway.routes_notify` write.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.api_schema import At, Opaque, Schema

__all__ = [
    "DeliveryStatus",
    "InAppMessage",
    "Inbox",
    "LocalSinks",
    "MarkedRead",
    "NotificationIds",
    "PushRegistered",
    "PushRemoved",
    "SinkMail",
    "SinkPush",
    "SinkSms",
    "SinkTelegram",
    "SmsStatusAck",
    "VapidKey",
]


class DeliveryAttempt(Schema):
    attempt: int
    at: At = Field(description="When the attempt was made, epoch ms: the name the notifications contract gives it.")
    attemptedAt: At = Field(description="The same instant as `at`, published first and kept for the callers using it.")
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


class SinkMail(Schema):
    to: list[str]
    subject: str
    text: str
    receivedAt: At


class SinkTelegram(Schema):
    chatId: str
    text: str
    messageId: int
    receivedAt: At


class SinkPush(Schema):
    subscription: str
    payload: Opaque
    ttlMs: int | None = Field(description="The push's TTL header in milliseconds; null: none sent.")
    receivedAt: At


class SinkSms(Schema):
    sid: str
    to: str
    sender: str = Field(description="The message's From number.")
    body: str
    status: str
    receivedAt: At


class LocalSinks(Schema):
    """What ``make run``'s local providers received (a development aid), newest last."""

    email: list[SinkMail]
    telegram: list[SinkTelegram]
    browser: list[SinkPush]
    sms: list[SinkSms]
    pushServiceUrl: str
