"""Media state changes, published on Redis pub/sub (``keys.EVENTS``) and watched by the service.

A message is the JSON of :func:`event_of`: ``{"mediaId", "state", "error", "updatedAt"}``. The
worker publishes after each database change; the gRPC ``WatchMedia`` stream relays them. Pub/sub
is fire-and-forget: a watcher that reconnects re-reads the media it cares about.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from runtime.logging import get_logger
from services.media import keys
from services.media.domain.records import MediaRecord

log = get_logger("media.events")


def event_of(record: MediaRecord) -> dict[str, Any]:
    return {
        "mediaId": record.media_id,
        "state": record.state.value,
        "error": record.error,
        "updatedAt": record.updated_at_ms,
    }


@contextlib.asynccontextmanager
async def subscription(redis: Redis) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """Subscribed once this is entered: every media event published from then on, decoded."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(keys.EVENTS)
    try:
        yield _decoded(pubsub)
    finally:
        await pubsub.aclose()


_POLL_S = 1.0
"""How long one read of the subscription waits. Each read is bounded because the client's socket
timeout (a few seconds, for ordinary commands) would otherwise end a quiet subscription with a
timeout error: ``listen()`` waits in one read that counts against it."""


async def _decoded(pubsub: PubSub) -> AsyncIterator[dict[str, Any]]:
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_POLL_S)
        if message is None or message.get("type") != "message":
            continue
        try:
            yield json.loads(message["data"])
        except (ValueError, TypeError):
            log.warning("undecodable media event skipped")


class EventPublisher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, record: MediaRecord) -> None:
        """Announce ``record``'s state; a Redis hiccup is logged, never fails the change itself."""
        try:
            await self.redis.publish(keys.EVENTS, json.dumps(event_of(record)))
        except (RedisError, OSError) as exc:
            log.warning("media event not published", media_id=record.media_id, error=str(exc))
