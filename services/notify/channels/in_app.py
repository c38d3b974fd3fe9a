"""In-app notifications: stored in the user's inbox, then published to their open pages.

The message is stored once per notification (a retried delivery finds it there), and published
on the user's pub/sub channel (``keys.inapp_channel``), which the notify service's
``WatchInApp`` streams follow. A page that was closed reads it from ``ListInApp`` later.
"""

from __future__ import annotations

import json
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.notify import keys
from services.notify.domain.outcomes import Outcome
from services.notify.records import InAppMessage, Notification
from services.notify.user_store import UserStore


def message_json(message: InAppMessage) -> str:
    return json.dumps(
        {
            "messageId": message.id,
            "userId": message.user_id,
            "notificationId": message.notification_id,
            "subject": message.subject,
            "body": message.body,
            "data": message.data,
            "read": message.read,
            "createdAtMs": message.created_at_ms,
            "readAtMs": message.read_at_ms,
        }
    )


class InAppSender:
    def __init__(self, users: UserStore, redis: Redis) -> None:
        self.users = users
        self.redis = redis

    async def send(self, notification: Notification) -> Outcome:
        message, _ = await self.users.add_message(
            user_id=notification.to,
            notification_id=notification.id,
            subject=notification.subject,
            body=notification.text,
            data=notification.data,
            now_ms=int(time.time() * 1000),
        )
        try:
            await self.redis.publish(keys.inapp_channel(notification.to), message_json(message))
        except (RedisError, OSError) as exc:
            # Stored is delivered: the inbox has it; only the live push to open pages was missed.
            return Outcome.delivered(f"{message.id} (live push missed: {exc})")
        return Outcome.delivered(message.id)

    async def close(self) -> None:
        return None
