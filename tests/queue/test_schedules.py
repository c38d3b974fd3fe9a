"""Cron-style schedules: every worker runs them, each tick is enqueued exactly once.

The workers' clock is a :class:`FakeClock` the tests move: a tick comes when the test says so,
and the tests wait on effects (a job's run recorded in Redis, every scheduler having checked up
to a moment), never on time passing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from devsupport.waiting import wait_until
from runtime.queue import JobContext, QueueAdmin, QueueSpec, Retention, Schedule, Worker
from runtime.queue.schedule import from_epoch, tick_ms
from tests.queue.harness import settled
from tests.support.clock import FakeClock

pytestmark = pytest.mark.timeout(60)

MINUTE = 60.0
START = 1_800_000_000.0 + 1
"""One second past a minute boundary (1.8e9 is one): the first tick is 59 s ahead."""


async def record_run(ctx: JobContext, label: str = "") -> None:
    """Counts its runs by job id (a scheduled job's id names its schedule and tick)."""
    await ctx["redis"].hincrby(f"test:runs:{label}", ctx["job_id"], 1)


def every_minute(queue: str) -> QueueSpec:
    schedule = Schedule("every-minute", "* * * * *", "record_run", {"label": queue})
    # Completed jobs are deleted at once: a job id already seen cannot be what stops a second run.
    return QueueSpec(queue, [record_run], schedules=[schedule], lease_s=2.0, retention=Retention(completed=0))


@contextlib.asynccontextmanager
async def workers(spec: QueueSpec, redis_url: str, clocks: list[FakeClock]) -> AsyncIterator[list[Worker]]:
    """One worker per clock, each with its own Redis connection, checking its schedules often."""
    async with contextlib.AsyncExitStack() as stack:
        started = []
        for clock in clocks:
            redis = Redis.from_url(redis_url)
            stack.push_async_callback(redis.aclose)
            worker = Worker(spec, redis, clock=clock, schedule_poll_s=0.01)
            started.append(worker)
            task = asyncio.create_task(worker.run())
            stack.push_async_callback(_stop, worker, task)
        yield started


async def _stop(worker: Worker, task: asyncio.Task[None]) -> None:
    worker.stop()
    await asyncio.wait_for(task, 20)


async def runs(redis: Redis, queue: str) -> dict[str, int]:
    counts: dict[bytes, bytes] = await redis.hgetall(f"test:runs:{queue}")  # type: ignore[misc]
    return {k.decode(): int(v) for k, v in counts.items()}


def job_id(minute: int) -> str:
    """The job of the tick ``minute`` minutes after START's minute."""
    return f"schedule:every-minute:{round((START - 1 + minute * MINUTE) * 1000)}"


async def all_checked(schedulers: list[Worker], until: float, admin: QueueAdmin) -> bool:
    """Every worker's scheduler has asked for every tick up to ``until``, and their jobs ran."""
    checked = all(w.scheduler is not None and w.scheduler.checked_until >= from_epoch(until) for w in schedulers)
    return checked and await settled(admin)


# ---- the schedule itself (pure) ---------------------------------------------------------------


def test_the_next_tick_is_strictly_after_the_moment_given() -> None:
    daily = Schedule("cleanup", "0 3 * * *", "purge")
    assert daily.next_tick(datetime(2026, 1, 1, 2, 59, tzinfo=UTC)) == datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    assert daily.next_tick(datetime(2026, 1, 1, 3, 0, tzinfo=UTC)) == datetime(2026, 1, 2, 3, 0, tzinfo=UTC)


def test_ticks_due_together_collapse_into_the_latest() -> None:
    daily = Schedule("cleanup", "0 3 * * *", "purge")
    pending = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    due, following = daily.latest_due(pending, datetime(2026, 1, 4, 12, 0, tzinfo=UTC))
    assert due == datetime(2026, 1, 4, 3, 0, tzinfo=UTC)
    assert following == datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    assert daily.latest_due(pending, datetime(2026, 1, 1, 2, 0, tzinfo=UTC)) == (None, pending)


def test_a_ticks_job_id_names_the_schedule_and_the_tick() -> None:
    tick = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    assert Schedule("cleanup", "0 3 * * *", "purge").job_id(tick) == f"schedule:cleanup:{tick_ms(tick)}"


@pytest.mark.parametrize(
    ("name", "cron", "problem"),
    [
        ("cleanup", "every day", "is not a cron expression"),
        ("cleanup", "61 * * * *", "is not a cron expression"),
        ("clean up", "0 3 * * *", "must match"),
        ("", "0 3 * * *", "must match"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_problem(name: str, cron: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Schedule(name, cron, "purge")


# ---- run by workers against Redis -------------------------------------------------------------


async def test_each_tick_runs_exactly_once_however_many_workers_run(redis: Redis, redis_url: str) -> None:
    spec = every_minute("sched_replicas")
    admin = QueueAdmin(spec, redis)
    clocks = [FakeClock(START), FakeClock(START), FakeClock(START)]
    async with workers(spec, redis_url, clocks) as started:
        for minute in range(1, 6):
            for clock in clocks:
                clock.now = START + minute * MINUTE
            tick_job = job_id(minute)
            await wait_until(functools.partial(_has, redis, spec.name, tick_job), within=20, what=f"job {tick_job}")
        await wait_until(lambda: all_checked(started, START + 5 * MINUTE, admin), within=20, what="every check")
        assert await runs(redis, spec.name) == {job_id(m): 1 for m in range(1, 6)}
        assert sum(w.scheduler.taken for w in started if w.scheduler) == 5


async def test_ticks_missed_together_run_once_as_the_latest(redis: Redis, redis_url: str) -> None:
    spec = every_minute("sched_jump")
    admin = QueueAdmin(spec, redis)
    clock = FakeClock(START)
    async with workers(spec, redis_url, [clock, clock]) as started:
        clock.now = START + 10 * MINUTE
        await wait_until(lambda: all_checked(started, clock.now, admin), within=20, what="every check")
        assert await runs(redis, spec.name) == {job_id(10): 1}


async def test_a_worker_whose_clock_lags_finds_the_tick_taken(redis: Redis, redis_url: str) -> None:
    spec = every_minute("sched_skew")
    admin = QueueAdmin(spec, redis)
    ahead, behind = FakeClock(START), FakeClock(START - 20)
    async with workers(spec, redis_url, [ahead, behind]) as (first, second):
        ahead.now = START + MINUTE
        await wait_until(lambda: _has(redis, spec.name, job_id(1)), within=20, what="the first tick's job")
        behind.now = START + MINUTE  # past the tick by its own clock too, 20 s after the other
        await wait_until(lambda: all_checked([first, second], START + MINUTE, admin), within=20, what="both checks")
        assert await runs(redis, spec.name) == {job_id(1): 1}
        assert (first.scheduler and first.scheduler.taken, second.scheduler and second.scheduler.taken) == (1, 0)


async def test_a_queue_without_schedules_runs_no_scheduler(redis: Redis) -> None:
    assert Worker(QueueSpec("sched_none", [record_run]), redis).scheduler is None


async def _has(redis: Redis, queue: str, job: str) -> bool:
    return job in await runs(redis, queue)
