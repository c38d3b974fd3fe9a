"""Async Redis clients with timeouts that fail fast, and the health check that pings them.

::

    client = create_redis(settings.redis_url)
    checks = {"redis": redis_health_check(client)}
    ...
    await client.aclose()      # a shutdown hook

Timeouts are short on purpose: a stalled Redis must surface as an error (and NOT_SERVING
health) within seconds, not hang RPCs. Commands are not retried here; callers that can retry
use :class:`runtime.retry.RetryPolicy`.
"""

from __future__ import annotations

import contextlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.health import HealthCheck
from runtime.redis_durability import check_redis_durability

__all__ = ["create_redis", "redis_health_check"]


def create_redis(
    url: str,
    *,
    decode_responses: bool = False,
    connect_timeout: float = 2.0,
    socket_timeout: float | None = 5.0,
    max_connections: int = 64,
    client_name: str | None = None,
) -> Redis:
    """A pooled asyncio client for ``url`` (redis://, rediss:// or unix://).

    Use ``socket_timeout=None`` for clients that block on purpose (BLPOP/XREAD with long waits).
    """
    client: Redis = Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        socket_keepalive=True,
        health_check_interval=30,
        max_connections=max_connections,
        client_name=client_name,
    )
    return client


def redis_health_check(client: Redis) -> HealthCheck:
    """A health check that passes when ``PING`` answers.

    Once Redis answers it also checks (at start, then every few minutes) that Redis is set up
    not to lose accepted work, see :mod:`runtime.redis_durability`; a problem there is
    reported, it does not fail the check.
    """

    async def ping() -> bool:
        answered = bool(await client.ping())
        if answered:
            with contextlib.suppress(RedisError):
                await check_redis_durability(client)
        return answered

    return ping
