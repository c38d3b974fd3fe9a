"""Every queue's job events, decoded: the public way to watch queues.

Workers and admin scripts publish one JSON event per job transition on the queue's pub/sub
channel (:attr:`QueueKeys.events`). :func:`watch_events` subscribes to some queues (or to all,
with one pattern, so a queue declared later is covered too) and yields :class:`QueueEvent`; a
fan-out that holds its own subscription (the queue admin's hub) uses :data:`ALL_QUEUES_PATTERN`
and :func:`decode_event`. Pub/sub keeps nothing: an event published while nobody listens is gone,
so a watcher re-reads the state after (re)subscribing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable

from redis.asyncio import Redis

from runtime.queue.keys import PREFIX, QueueKeys
from runtime.queue.models import QueueEvent

__all__ = ["ALL_QUEUES_PATTERN", "decode_event", "watch_events"]

ALL_QUEUES_PATTERN = QueueKeys("*").events
"""The PSUBSCRIBE pattern matching every queue's event channel."""
_CHANNEL = re.compile(rf"{re.escape(PREFIX)}:\{{(?P<queue>[^}}]+)\}}:events")


def decode_event(channel: bytes | str, data: bytes | str) -> QueueEvent | None:
    """The event published on ``channel``; None when ``channel`` is no queue's event channel.

    Raises ValueError (or KeyError/TypeError) when ``data`` is not a queue event.
    """
    name = channel.decode() if isinstance(channel, bytes) else channel
    matched = _CHANNEL.fullmatch(name)
    if matched is None:
        return None
    return QueueEvent.parse(matched.group("queue"), data)


async def watch_events(
    redis: Redis, queues: Iterable[str] = (), *, subscribed: asyncio.Event | None = None
) -> AsyncIterator[QueueEvent]:
    """Yield the job events of ``queues`` (every queue when empty) until the caller stops.

    ``subscribed`` is set once the subscription is live: events published after that are seen.
    Unreadable messages are skipped.
    """
    channels = [QueueKeys(queue).events for queue in queues]
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        if channels:
            await pubsub.subscribe(*channels)
        else:
            await pubsub.psubscribe(ALL_QUEUES_PATTERN)
        if subscribed is not None:
            subscribed.set()
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None or message.get("type") not in {"message", "pmessage"}:
                continue
            try:
                event = decode_event(message["channel"], message["data"])
            except (ValueError, KeyError, TypeError):
                continue
            if event is not None:
                yield event
    finally:
        await pubsub.aclose()
