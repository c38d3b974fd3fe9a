"""Key changes announced to every process at once, over Redis pub/sub.

Each process caches what a credential stands for (``AUTH_KEY_CACHE_SECONDS``), so a revoked key
would keep working there until its entry expired. ``python -m runtime.auth keys revoke`` (and
``create``) therefore publishes the key id on :data:`CHANNEL` once the database has it; every
process that has looked up an API key listens (:class:`KeyChangeListener`, started on its first
lookup) and drops its whole cache on each message, so the next call of the revoked key is checked
against the database again, in every replica, a few milliseconds after the command.

Messages published while a listener is disconnected are lost, so a listener also drops the cache
each time its subscription is (re)confirmed; while it cannot subscribe (Redis down) the cache
lifetime still bounds how long a revoked key works, as it did without the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from redis.exceptions import RedisError

from runtime.logging import get_logger
from runtime.redis import create_redis

__all__ = ["CHANNEL", "KeyChangeListener", "announce_key_change"]

log = get_logger("runtime.auth")

CHANNEL = "switchboard:auth:v1:key-changes"
"""The pub/sub channel of key changes; each message is the id of the key that changed."""

RETRY_SECONDS = 1.0


async def announce_key_change(redis_url: str, key_id: str) -> int:
    """Publish that ``key_id`` changed; returns how many processes were listening.

    Raises :class:`redis.exceptions.RedisError` when Redis cannot be reached.
    """
    client = create_redis(redis_url, connect_timeout=2.0, socket_timeout=2.0)
    try:
        return int(await client.publish(CHANNEL, key_id))
    finally:
        await client.aclose()


class KeyChangeListener:
    """Calls ``on_change()`` for every key change announced, and each time it (re)subscribes."""

    def __init__(self, redis_url: str, on_change: Callable[[], None]) -> None:
        self.redis_url = redis_url
        self.on_change = on_change
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="auth key changes")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        warned = False
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as error:
                if self.subscribed.is_set() or not warned:
                    log.warning(
                        "key change listener disconnected: revocations take up to AUTH_KEY_CACHE_SECONDS",
                        error=type(error).__name__,
                    )
                    warned = True
            self.subscribed.clear()
            await asyncio.sleep(RETRY_SECONDS)

    async def _listen(self) -> None:
        # No socket timeout: the connection is idle until a key changes (health checks ping it).
        client = create_redis(self.redis_url, connect_timeout=2.0, socket_timeout=None, max_connections=1)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is None:
                    continue
                # The subscription confirmation too: changes made while disconnected were missed.
                self.on_change()
                if message["type"] == "subscribe":
                    self.subscribed.set()
                    log.info("key change listener subscribed", channel=CHANNEL)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
