"""Stopping a background loop: by a flag as well as by cancel, bounded, and logged when ignored.

A cancel can be lost: on Python 3.11 a redis-py call (client with a socket timeout) cancelled
while its command is being written returns normally (runtime.supervision's docstring has the
line). These loops stand in for that with calls that swallow their cancel.
"""

from __future__ import annotations

import asyncio
import random

import structlog
from redis.asyncio import Redis

from runtime.background import BackgroundTask
from runtime.supervision import TaskSupervisor


async def call_losing_its_cancel(started: asyncio.Event) -> None:
    """A call that returns normally when cancelled (as redis-py's can)."""
    started.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        return


async def test_a_loop_whose_call_loses_its_cancel_ends_at_its_next_check_when_its_owner_stops() -> None:
    started = asyncio.Event()
    calls = 0
    background: BackgroundTask

    async def loop() -> None:
        nonlocal calls
        while not background.stopping:
            calls += 1
            await call_losing_its_cancel(started)
            await background.pause(3600)

    background = BackgroundTask(loop, "gauges")
    background.start()
    await asyncio.wait_for(started.wait(), 10)
    assert await background.stop() is True
    assert calls == 1  # no call after the lost cancel


async def test_a_loop_that_does_not_check_the_flag_is_cancelled_again_until_it_ends() -> None:
    started = asyncio.Event()
    calls = 0

    async def loop() -> None:  # the old way: the cancel is its only way out
        nonlocal calls
        while True:
            calls += 1
            await call_losing_its_cancel(started)
            await asyncio.sleep(3600)

    background = BackgroundTask(loop, "old-style")
    background.start()
    await asyncio.wait_for(started.wait(), 10)
    assert await background.stop() is True
    assert calls == 1


async def test_a_task_that_ignores_every_cancel_is_logged_and_left_behind_at_the_bound() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                started.set()
                await release.wait()
            except asyncio.CancelledError:
                continue

    background = BackgroundTask(stubborn, "stubborn", stop_within=0.3)
    background.start()
    task = next(t for t in asyncio.all_tasks() if t.get_name() == "stubborn")
    await asyncio.wait_for(started.wait(), 10)
    try:
        with structlog.testing.capture_logs() as logs:
            assert await background.stop() is False
        assert [(line["log_level"], line["task"]) for line in logs if "ignored" in line["event"]] == [
            ("warning", "stubborn")
        ]
        assert not task.done()
    finally:
        release.set()
        await asyncio.wait_for(task, 10)


async def test_a_supervisor_stops_its_loops_by_close_even_when_their_cancel_is_lost() -> None:
    tasks = TaskSupervisor()
    started = asyncio.Event()
    calls = 0

    async def loop() -> None:
        nonlocal calls
        while not tasks.closing:
            calls += 1
            await call_losing_its_cancel(started)
            await tasks.pause(3600)

    task = tasks.spawn(loop(), "notify-queue-gauges")
    await asyncio.wait_for(started.wait(), 10)
    assert await tasks.stop(within=30) == []
    assert task.done()
    assert calls == 1
    assert tasks.failures == {}


async def test_a_supervisor_cancels_again_a_loop_blocked_after_losing_its_cancel() -> None:
    tasks = TaskSupervisor()
    started = asyncio.Event()
    calls = 0

    async def loop() -> None:
        nonlocal calls
        while True:
            calls += 1
            await call_losing_its_cancel(started)
            await asyncio.sleep(3600)  # blocks (an XREAD) after the call lost the cancel

    task = tasks.spawn(loop(), "follower")
    await asyncio.wait_for(started.wait(), 10)
    assert await tasks.stop(within=30) == []
    assert task.done()
    assert calls == 1


class RedisGauges:
    """A gauges loop: one Redis call after another until stopped."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.calls_after_stop = 0
        self.task = BackgroundTask(self.run, "redis-gauges")

    async def run(self) -> None:
        while not self.task.stopping:
            await self.redis.get("sb:test:gauge")
            self.calls_after_stop += self.task.stopping
            await self.task.pause(0)


async def test_loops_of_real_redis_calls_always_stop_whenever_the_stop_comes(redis_url: str) -> None:
    # The client has a socket timeout, as every service's: its commands go through the
    # asyncio.wait_for that loses a cancel arriving while a command is being written.
    redis = Redis.from_url(redis_url, socket_timeout=5.0)
    rng = random.Random(7)
    try:
        for _ in range(60):
            gauges = RedisGauges(redis)
            gauges.task.start()
            for _ in range(rng.randrange(1, 40)):
                await asyncio.sleep(0)
            assert await gauges.task.stop() is True
            assert gauges.calls_after_stop <= 1  # the call under way when the stop came, at most
    finally:
        await redis.aclose()
