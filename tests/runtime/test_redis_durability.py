"""Every process says when its Redis can lose accepted work (no AOF, eviction), as BullMQ does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import structlog.testing
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from devsupport.redis_server import RedisServer
from runtime.redis import redis_health_check
from runtime.redis_durability import check_redis_durability, inspect_redis_durability


@pytest.fixture
async def aof_redis() -> AsyncIterator[Redis]:
    with RedisServer(appendfsync="always") as server:
        client = Redis.from_url(server.url)
        yield client
        await client.aclose()


def problem_gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("switchboard_redis_durability_problem", {"problem": name})


async def test_a_redis_without_aof_is_reported_in_the_log_the_metric_and_the_answer(redis: Redis) -> None:
    with structlog.testing.capture_logs() as logs:
        problems = await check_redis_durability(redis, force=True)
    assert any("appendonly no" in p for p in problems)
    assert problem_gauge("persistence_off") == 1
    warned = [entry for entry in logs if entry["event"] == "redis can lose accepted work"]
    assert [entry["problem"] for entry in warned] == ["persistence_off"]


async def test_an_aof_redis_with_noeviction_has_no_problem(aof_redis: Redis) -> None:
    durability = await inspect_redis_durability(aof_redis)
    assert (durability.aof_enabled, durability.appendfsync, durability.maxmemory_policy) == (
        True,
        "always",
        "noeviction",
    )
    assert await check_redis_durability(aof_redis, force=True) == []
    assert problem_gauge("persistence_off") == 0


async def test_an_eviction_policy_is_a_problem_even_with_aof(aof_redis: Redis) -> None:
    await aof_redis.config_set("maxmemory-policy", "allkeys-lru")
    problems = await check_redis_durability(aof_redis, force=True)
    assert len(problems) == 1
    assert "allkeys-lru, not noeviction" in problems[0]
    assert problem_gauge("eviction") == 1


async def test_the_health_check_reports_but_still_passes_on_a_redis_without_aof(redis: Redis) -> None:
    assert await redis_health_check(redis)() is True
    assert await check_redis_durability(redis) != []  # what the health check found, kept
