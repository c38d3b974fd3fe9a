"""Proto <-> domain for the notify contract: enums, requests, statuses, inbox messages."""

from __future__ import annotations

import json
from typing import Any

from switchboard.notify.v1 import notify_pb2

from runtime.errors import InvalidArgument
from services.notify.domain.channels import Channel
from services.notify.domain.requests import SendRequest
from services.notify.records import InAppMessage, Notification, State

CHANNEL_OF: dict[int, Channel] = {
    notify_pb2.NOTIFICATION_CHANNEL_EMAIL: Channel.EMAIL,
    notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM: Channel.TELEGRAM,
    notify_pb2.NOTIFICATION_CHANNEL_WEB_PUSH: Channel.BROWSER,
    notify_pb2.NOTIFICATION_CHANNEL_IN_APP: Channel.DATABASE,
    notify_pb2.NOTIFICATION_CHANNEL_SMS: Channel.SMS,
}
CHANNEL_PB: dict[Channel, notify_pb2.NotificationChannel.ValueType] = {v: k for k, v in CHANNEL_OF.items()}  # type: ignore[misc]
PRIORITY_OF = {
    notify_pb2.PRIORITY_UNSPECIFIED: "",
    notify_pb2.PRIORITY_LOW: "low",
    notify_pb2.PRIORITY_NORMAL: "normal",
    notify_pb2.PRIORITY_HIGH: "high",
    notify_pb2.PRIORITY_CRITICAL: "critical",
}
STATE_PB: dict[State, notify_pb2.DeliveryState.ValueType] = {
    State.QUEUED: notify_pb2.DELIVERY_STATE_QUEUED,
    State.SCHEDULED: notify_pb2.DELIVERY_STATE_SCHEDULED,
    State.SENDING: notify_pb2.DELIVERY_STATE_SENDING,
    State.DELIVERED: notify_pb2.DELIVERY_STATE_DELIVERED,
    State.RETRYING: notify_pb2.DELIVERY_STATE_RETRYING,
    State.FAILED: notify_pb2.DELIVERY_STATE_FAILED,
}
RECIPIENT_FIELD = {
    Channel.EMAIL: "email",
    Channel.TELEGRAM: "telegram_chat_id",
    Channel.BROWSER: "user_id",
    Channel.DATABASE: "user_id",
    Channel.SMS: "phone",
}


def channel_of(value: int) -> Channel:
    channel = CHANNEL_OF.get(value)
    if channel is None:
        raise InvalidArgument("channel", "must be one of EMAIL, TELEGRAM, WEB_PUSH, IN_APP, SMS")
    return channel


def send_request(n: notify_pb2.Notification) -> SendRequest:
    channel = channel_of(n.channel)
    field = RECIPIENT_FIELD[channel]
    to = getattr(n.recipient, field)
    if not to:
        raise InvalidArgument("to", f"the {channel} channel needs recipient.{field}")
    return SendRequest(
        channel=channel.value,
        to=to,
        subject=n.subject,
        text=n.body,
        html=n.html_body,
        template=n.template,
        data=dict(n.data),
        priority=PRIORITY_OF.get(n.priority, "?"),
        delay_ms=n.delay_ms,
        send_at_ms=n.send_at_ms,
        idempotency_key=n.idempotency_key,
        max_attempts=n.max_attempts,
    )


def delivery_status(n: Notification) -> notify_pb2.DeliveryStatus:
    return notify_pb2.DeliveryStatus(
        notification_id=n.id,
        channel=CHANNEL_PB[Channel(n.channel)],
        state=STATE_PB[n.state],
        attempts=[
            notify_pb2.DeliveryAttempt(attempt=a.attempt, at_ms=a.at_ms, ok=a.ok, error=a.error) for a in n.attempts
        ],
        last_error=n.last_error,
        created_at_ms=n.created_at_ms,
        delivered_at_ms=n.delivered_at_ms,
        next_attempt_at_ms=n.next_attempt_at_ms,
        to=n.to,
        subject=n.subject,
        priority=n.priority,
    )


def _strings(data: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def inapp_message(m: InAppMessage) -> notify_pb2.InAppMessage:
    return notify_pb2.InAppMessage(
        message_id=m.id,
        user_id=m.user_id,
        subject=m.subject,
        body=m.body,
        data=_strings(m.data),
        read=m.read,
        created_at_ms=m.created_at_ms,
        read_at_ms=m.read_at_ms,
    )


def inapp_message_from_json(d: dict[str, Any]) -> notify_pb2.InAppMessage:
    return notify_pb2.InAppMessage(
        message_id=d["messageId"],
        user_id=d["userId"],
        subject=d["subject"],
        body=d["body"],
        data=_strings(d.get("data") or {}),
        read=bool(d.get("read")),
        created_at_ms=int(d["createdAtMs"]),
        read_at_ms=int(d.get("readAtMs") or 0),
    )
