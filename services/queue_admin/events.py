"""One Redis pub/sub subscription for every queue's job events, fanned out to the watchers.

The queue layer publishes each job event on its queue's channel; the hub holds a single
``PSUBSCRIBE`` on ``runtime.queue.ALL_QUEUES_PATTERN`` (so a queue declared later is covered too),
decodes each message with ``runtime.queue.decode_event`` and hands the event to the watchers
whose filter matches.  A watcher that falls ``buffer`` events behind is cut off
(``overflowed``) rather than slowing everyone down; its client reconnects and re-reads the
state.  After a Redis error the hub resubscribes with a capped back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.logging import get_logger
from runtime.queue import ALL_QUEUES_PATTERN, QueueEvent, decode_event

__all__ = ["EventHub", "Subscription"]

log = get_logger("queue_admin.events")


class Subscription:
    def __init__(self, queues: Iterable[str], buffer: int) -> None:
        self.queues = frozenset(queues)
        self.events: asyncio.Queue[tuple[QueueEvent, int]] = asyncio.Queue(maxsize=buffer)
        self.overflowed = False

    def wants(self, queue: str) -> bool:
        return not self.queues or queue in self.queues

    def offer(self, event: QueueEvent, at_ms: int) -> None:
        if self.overflowed:
            return
        try:
            self.events.put_nowait((event, at_ms))
        except asyncio.QueueFull:
            self.overflowed = True  # the reader sees it once it has drained what it holds

    async def next(self, stop: asyncio.Event) -> tuple[QueueEvent, int] | None:
        """The next event, or None when ``stop`` is set or the watcher overflowed."""
        if self.overflowed and self.events.empty():
            return None
        getter = asyncio.ensure_future(self.events.get())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None


class EventHub:
    def __init__(self, redis: Redis, *, buffer: int = 1000, max_backoff_s: float = 2.0) -> None:
        self.redis = redis
        self.buffer = buffer
        self.max_backoff_s = max_backoff_s
        self._subs: set[Subscription] = set()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def subscribe(self, queues: Iterable[str], *, ready_within_s: float = 5.0) -> Subscription:
        """A new watcher; returns once the hub's Redis subscription is live (or raises TimeoutError)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="queue-events-hub")
        sub = Subscription(queues, self.buffer)
        self._subs.add(sub)
        try:
            async with asyncio.timeout(ready_within_s):
                await self._ready.wait()
        except BaseException:
            self._subs.discard(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def watchers(self) -> int:
        return len(self._subs)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        try:
            event = decode_event(channel, data)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable queue event", channel=channel.decode() if isinstance(channel, bytes) else channel)
            return
        if event is None:
            return
        at_ms = int(time.time() * 1000)
        for sub in list(self._subs):
            if sub.wants(event.queue):
                sub.offer(event, at_ms)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(ALL_QUEUES_PATTERN)
                self._ready.set()
                backoff = 0.05
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None and message.get("type") == "pmessage":
                        self.dispatch(message["channel"], message["data"])
            except (RedisError, OSError) as exc:
                self._ready.clear()
                log.warning("queue events subscription lost; resubscribing", error=str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
