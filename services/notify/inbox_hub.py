"""Live in-app messages: one Redis pub/sub connection fans each user's new messages out to the
``WatchInApp`` streams open for that user.

The hub SUBSCRIBEs to a user's channel while at least one stream watches them and unsubscribes
when the last one ends (a PSUBSCRIBE would make every queue script publish its events). A
watcher that falls ``buffer`` messages behind is ended (its client reconnects and reads the
inbox), so a slow page never holds the others up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.errors import Unavailable
from runtime.logging import get_logger
from services.notify import keys

log = get_logger("notify.inbox_hub")
_END = object()


class InboxHub:
    def __init__(self, redis: Redis, *, buffer: int = 256) -> None:
        self._pubsub = redis.pubsub()
        self._buffer = buffer
        self._watchers: dict[str, set[asyncio.Queue[Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def watch(self, user_id: str, ready: asyncio.Event | None = None) -> AsyncIterator[dict[str, Any]]:
        """Each new message of ``user_id`` as a dict (``in_app.message_json``'s fields)."""
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=self._buffer)
        channel = keys.inapp_channel(user_id)
        async with self._lock:
            watchers = self._watchers.setdefault(user_id, set())
            watchers.add(queue)
            try:
                if len(watchers) == 1:
                    await self._pubsub.subscribe(channel)
            except (RedisError, OSError) as exc:
                watchers.discard(queue)
                raise Unavailable(f"redis unreachable: {exc}") from exc
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="notify-inbox-hub")
        if ready is not None:
            ready.set()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                yield item
        finally:
            async with self._lock:
                watchers = self._watchers.get(user_id, set())
                watchers.discard(queue)
                if not watchers:
                    self._watchers.pop(user_id, None)
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        prefix = keys.inapp_channel("")
        while self._watchers:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("inbox hub lost redis; ending watchers", error=str(exc))
                self._end_all()
                return
            if message is None or message.get("type") != "message":
                continue
            user_id = message["channel"].decode()[len(prefix) :]
            payload = json.loads(message["data"])
            for queue in list(self._watchers.get(user_id, ())):
                try:
                    queue.put_nowait(payload)
                except asyncio.QueueFull:
                    queue.get_nowait()
                    queue.put_nowait(_END)

    def end_watches(self) -> None:
        """End every open watch now (the server is stopping): otherwise each ``WatchInApp`` stream
        holds the drain until the grace runs out and leaves the shutdown hooks no time."""
        self._end_all()

    def _end_all(self) -> None:
        for watchers in self._watchers.values():
            for queue in watchers:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(_END)

    async def close(self) -> None:
        self._end_all()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._pubsub.aclose()
