"""The media event subscription: what WatchMedia relays."""

from __future__ import annotations

import asyncio

import pytest

from runtime.redis import create_redis
from services.media import keys
from services.media.events import subscription

pytestmark = pytest.mark.timeout(30)


async def test_a_subscription_quiet_for_longer_than_the_socket_timeout_still_delivers(redis_url: str) -> None:
    redis = create_redis(redis_url, connect_timeout=0.5, socket_timeout=0.3)
    try:
        async with subscription(redis) as events:
            following = asyncio.ensure_future(anext(events))
            await asyncio.sleep(1.5)  # five socket timeouts with nothing published
            assert not following.done()
            await redis.publish(keys.EVENTS, b'{"mediaId": "m1", "state": "ready"}')
            event = await asyncio.wait_for(following, 10)
        assert event == {"mediaId": "m1", "state": "ready"}
    finally:
        await redis.aclose()


async def test_an_undecodable_event_is_skipped(redis_url: str) -> None:
    redis = create_redis(redis_url, connect_timeout=0.5, socket_timeout=5.0)
    try:
        async with subscription(redis) as events:
            await redis.publish(keys.EVENTS, b"not json")
            await redis.publish(keys.EVENTS, b'{"mediaId": "m2", "state": "failed"}')
            event = await asyncio.wait_for(anext(events), 10)
        assert event == {"mediaId": "m2", "state": "failed"}
    finally:
        await redis.aclose()
