"""JSON of the notify contract as the gateway answers it (camelCase, channel names of the API)."""

from __future__ import annotations

import json
from typing import Any

from switchboard.notify.v1 import notify_pb2

CHANNEL_PB: dict[str, notify_pb2.NotificationChannel.ValueType] = {
    "email": notify_pb2.NOTIFICATION_CHANNEL_EMAIL,
    "telegram": notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM,
    "browser": notify_pb2.NOTIFICATION_CHANNEL_WEB_PUSH,
    "database": notify_pb2.NOTIFICATION_CHANNEL_IN_APP,
    "sms": notify_pb2.NOTIFICATION_CHANNEL_SMS,
}
CHANNEL_NAME = {value: name for name, value in CHANNEL_PB.items()}
PRIORITY_PB: dict[str, notify_pb2.Priority.ValueType] = {
    "low": notify_pb2.PRIORITY_LOW,
    "normal": notify_pb2.PRIORITY_NORMAL,
    "high": notify_pb2.PRIORITY_HIGH,
    "critical": notify_pb2.PRIORITY_CRITICAL,
}
RECIPIENT_FIELD = {
    "email": "email",
    "telegram": "telegram_chat_id",
    "browser": "user_id",
    "database": "user_id",
    "sms": "phone",
}
# Names the notify service gives fields in INVALID_ARGUMENT -> the JSON field of this API.
JSON_FIELD = {"notification_id": "id", "user_id": "userId", "subscription_id": "id", "page_size": "pageSize"}


def state_name(state: int) -> str:
    return notify_pb2.DeliveryState.Name(state).removeprefix("DELIVERY_STATE_").lower()  # type: ignore[arg-type]


def _ms_or_none(value: int) -> int | None:
    return value or None


def status_json(s: notify_pb2.DeliveryStatus) -> dict[str, Any]:
    return {
        "notificationId": s.notification_id,
        "channel": CHANNEL_NAME.get(s.channel, "unknown"),
        "to": s.to,
        "subject": s.subject,
        "priority": s.priority,
        "state": state_name(s.state),
        # "at" is the contract's name for an attempt's instant; "attemptedAt" shipped first and
        # stays (docs/api-conventions.md, "Time").
        "attempts": [
            {
                "attempt": a.attempt,
                "at": _ms_or_none(a.at_ms),
                "attemptedAt": _ms_or_none(a.at_ms),
                "ok": a.ok,
                "error": a.error,
            }
            for a in s.attempts
        ],
        "lastError": s.last_error,
        "createdAt": s.created_at_ms,
        "deliveredAt": _ms_or_none(s.delivered_at_ms),
        "nextAttemptAt": _ms_or_none(s.next_attempt_at_ms),
    }


def message_json(m: notify_pb2.InAppMessage) -> dict[str, Any]:
    return {
        "messageId": m.message_id,
        "userId": m.user_id,
        "subject": m.subject,
        "body": m.body,
        "data": dict(m.data),
        "read": m.read,
        "createdAt": m.created_at_ms,
        "readAt": _ms_or_none(m.read_at_ms),
    }


def data_strings(data: dict[str, Any]) -> dict[str, str]:
    """Template data travels as strings: JSON values other than strings are sent as their JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in data.items()}
