"""Leader election: one active ingest per Asterisk server, fenced by an increasing token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from services.ami_ingest.leader import LeaderElector


async def _noop(token: int) -> None:
    return None


@dataclass
class Rounds:
    finished: int = 0
    """Campaign rounds finished, failed ones too."""
    last_started: float = 0.0
    """time.monotonic() when the latest round began."""


def count_rounds(elector: LeaderElector) -> Rounds:
    """Count the elector's campaign rounds from now on."""
    rounds = Rounds()
    acquire = elector.try_acquire

    async def counted() -> int:
        rounds.last_started = time.monotonic()
        try:
            return await acquire()
        finally:
            rounds.finished += 1

    elector.try_acquire = counted  # type: ignore[method-assign]
    return rounds


async def test_only_one_replica_holds_the_lease(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    first, second = LeaderElector(redis, "pbx1"), LeaderElector(redis, "pbx1")
    token = await first.try_acquire()
    assert token > 0
    assert await second.try_acquire() == 0
    assert await first.try_acquire() == token, "renewing keeps the same token"
    await redis.aclose()


async def test_separate_asterisk_servers_have_separate_leases(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    assert await LeaderElector(redis, "pbx1").try_acquire() > 0
    assert await LeaderElector(redis, "pbx2").try_acquire() > 0
    await redis.aclose()


async def test_standby_takes_over_with_a_larger_token_after_the_leader_dies(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    leader = LeaderElector(redis, "pbx1", lease_ms=600, poll_interval=0.05)
    standby = LeaderElector(redis, "pbx1", lease_ms=600, poll_interval=0.05)
    elected: asyncio.Queue[tuple[str, int, float]] = asyncio.Queue()

    def recorder(name: str) -> Callable[[int], Awaitable[None]]:
        async def on_elected(token: int) -> None:
            await elected.put((name, token, time.monotonic()))

        return on_elected

    leader_task = asyncio.create_task(leader.run(recorder("leader"), _noop))
    name, first_token, _ = await asyncio.wait_for(elected.get(), 2)
    assert name == "leader"
    leader_rounds, standby_rounds = count_rounds(leader), count_rounds(standby)
    standby_task = asyncio.create_task(standby.run(recorder("standby"), _noop))
    # Past the lease's 600 ms in renewals (every 200 ms), the standby campaigning all along.
    await wait_until(
        lambda: leader_rounds.finished >= 4 and standby_rounds.finished >= 4,
        within=10,
        what="lease rounds of both replicas",
    )
    assert elected.empty(), "the standby must not lead while the leader renews"

    leader_task.cancel()  # dies without releasing: the lease has to expire
    name, token, at = await asyncio.wait_for(elected.get(), 10)
    assert name == "standby"
    assert token > first_token
    # Not before the lease ran out: 600 ms after the leader's last renewal began, at the earliest
    # (less 5 ms: Redis keeps expiry times in whole ms). A lower bound, which load cannot break.
    assert at - leader_rounds.last_started >= 0.6 - 0.005

    await standby.stop()
    await standby_task
    await redis.aclose()


async def test_stepping_down_hands_the_lease_over_at_once(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    leader = LeaderElector(redis, "pbx1", lease_ms=60_000)
    elected = asyncio.Event()

    async def on_elected(token: int) -> None:
        elected.set()

    task = asyncio.create_task(leader.run(on_elected, _noop))
    await asyncio.wait_for(elected.wait(), 2)
    old_token = leader.token
    await leader.stop()
    await task
    assert await LeaderElector(redis, "pbx1").try_acquire() > old_token
    await redis.aclose()


async def test_a_leader_whose_lease_was_taken_is_deposed(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    leader = LeaderElector(redis, "pbx1", lease_ms=300)
    deposed: asyncio.Queue[int] = asyncio.Queue()

    async def on_deposed(token: int) -> None:
        await deposed.put(token)

    elected = asyncio.Event()

    async def on_elected(token: int) -> None:
        elected.set()

    task = asyncio.create_task(leader.run(on_elected, on_deposed))
    await asyncio.wait_for(elected.wait(), 2)
    token = leader.token
    await redis.set("sb:ingest:v1:leader:pbx1", "someone-else|99", px=60_000)
    assert await asyncio.wait_for(deposed.get(), 2) == token
    assert not leader.is_leader
    await leader.stop()
    await task
    await redis.aclose()


async def test_tokens_keep_growing_after_redis_loses_its_data(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    before = await LeaderElector(redis, "pbx1").try_acquire()
    await redis.flushall()
    after = await LeaderElector(redis, "pbx1").try_acquire()
    assert after > before
    await redis.aclose()


async def test_a_leader_that_retakes_a_lost_lease_starts_a_new_term(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    leader = LeaderElector(redis, "pbx1", lease_ms=300)
    terms: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    async def on_elected(token: int) -> None:
        await terms.put(("elected", token))

    async def on_deposed(token: int) -> None:
        await terms.put(("deposed", token))

    task = asyncio.create_task(leader.run(on_elected, on_deposed))
    kind, first = await asyncio.wait_for(terms.get(), 2)
    assert kind == "elected"
    await redis.flushall()  # Redis restarted empty: the lease is gone and nobody else holds it
    assert await asyncio.wait_for(terms.get(), 2) == ("deposed", first)
    kind, second = await asyncio.wait_for(terms.get(), 2)
    assert kind == "elected"
    assert second > first
    await leader.stop()
    await task
    await redis.aclose()


async def test_a_redis_blip_shorter_than_the_lease_does_not_depose_the_leader(redis_server: RedisServer) -> None:
    redis = aioredis.from_url(redis_server.url)
    leader = LeaderElector(redis, "pbx1", lease_ms=3000)
    deposed: asyncio.Queue[int] = asyncio.Queue()
    elected = asyncio.Event()

    async def on_elected(token: int) -> None:
        elected.set()

    async def on_deposed(token: int) -> None:
        await deposed.put(token)

    task = asyncio.create_task(leader.run(on_elected, on_deposed))
    await asyncio.wait_for(elected.wait(), 2)
    rounds = count_rounds(leader)
    redis_server.stop()
    # Renewal rounds run every second; one that fails is the blip.
    await wait_until(lambda: rounds.finished >= 1, within=5, what="a renewal round while Redis is down")
    assert deposed.empty()
    assert leader.is_leader
    await asyncio.wait_for(deposed.get(), 5)  # past the lease it steps down
    redis_server.start()
    await leader.stop()
    await task
    await redis.aclose()
