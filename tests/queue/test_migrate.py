"""Moving a v1 deployment's queue data to the current key layout, through v2 (runtime.queue.migrate).

The v1 data is written here as v1's scripts wrote it (commit 7f25304, runtime/queue/lua_worker.py):
a job HASH ``n d p m t`` at enqueue (``p`` absent while 0), ``a s w`` set by a claim, ``w`` removed
by a failure or reaping and set to '' with ``f r`` by a completion, ``e`` the errors, ``f`` a dead
letter's finish; ids in ``wait0`` / ``wait`` / ``delayed`` / ``active`` / ``completed`` / ``failed``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable
from typing import Any

import pytest
from redis.asyncio import Redis

from devsupport.waiting import wait_until
from runtime.queue import JobState, QueueAdmin, QueueSpec
from runtime.queue.migrate import V1_REGISTRY_KEY, migrate_queue, v1_prefix
from runtime.queue.registry import REGISTRY_KEY, declaration_field, declared
from tests.queue.harness import StartWorkers

pytestmark = pytest.mark.slow
V1 = v1_prefix("workflow")
SPAN = 2**44
ACTIVE_PIN = "~" * 100


async def _answer(call: Awaitable[Any] | Any) -> Any:
    """redis-py types its hash and list commands as sync-or-async; these are async."""
    return await call


async def _now_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return seconds * 1000 + micros // 1000


async def _v1_job(redis: Redis, job_id: str, *, priority: int = 0, enqueued: int, **fields: Any) -> None:
    h: dict[str, Any] = {"n": "statistics_aggregation", "d": "{}", "m": 3, "t": enqueued, **fields}
    if priority:
        h["p"] = priority
    await _answer(redis.hset(V1 + f"j:{job_id}", mapping=h))


async def _v1_deployment(redis: Redis, spec: QueueSpec) -> dict[str, int]:
    """A v1 queue mid-flight: waiting, delayed, retried, history, schedules, registry.
    Returns the delayed job's due time."""
    now = await _now_ms(redis)
    for job_id in ("w1", "w2", "w3"):
        await _v1_job(redis, job_id, enqueued=now - 100)
    await _answer(redis.rpush(V1 + "wait0", "w1", "w2", "w3"))
    await _v1_job(redis, "p5", priority=5, enqueued=now - 90)
    await redis.zadd(V1 + "wait", {"p5": 5 * SPAN + 11})
    error = {"attempt": 1, "error": "boom", "traceback": "", "at": now - 50}
    # failed once, its retry now due: a claim set a/s/w, the failure removed w
    await _v1_job(redis, "retried", enqueued=now - 80, a=1, s=now - 60, e=json.dumps([error]))
    await redis.zadd(V1 + "delayed", {"retried": now - 10})
    due = now + 1500
    await _v1_job(redis, "later", enqueued=now - 70)
    await redis.zadd(V1 + "delayed", {"later": due})
    await _v1_job(redis, "done", enqueued=now - 300, a=1, s=now - 250, w="", f=now - 200, r='{"rows": 4}')
    await _v1_job(redis, "done-none", enqueued=now - 300, a=1, s=now - 240, w="", f=now - 190, r="null")
    await redis.zadd(V1 + "completed", {"done": now - 200, "done-none": now - 190})
    dead = [{**error, "attempt": i} for i in (1, 2, 3)]
    await _v1_job(redis, "dead", enqueued=now - 400, a=3, s=now - 260, e=json.dumps(dead), f=now - 180)
    await redis.zadd(V1 + "failed", {"dead": now - 180})
    await redis.set(V1 + "seq", 11)
    await _answer(redis.hset(V1 + "schedules", "nightly", str(now - 1000)))
    await redis.zadd(V1 + "workers", {"old-worker": now - 5000})
    await _answer(redis.hset(V1_REGISTRY_KEY, mapping=dict(declaration_field(spec))))
    return {"due": due, "now": now}


def _migrate_command(redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", "runtime.queue.migrate"], env=env, capture_output=True, text=True, timeout=60
    )


async def _keys(redis: Redis, pattern: str) -> list[str]:
    return sorted([k.decode() async for k in redis.scan_iter(match=pattern)])


async def test_every_waiting_and_delayed_v1_job_runs_once_after_the_command(
    redis: Redis, redis_url: str, spec: QueueSpec, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    times = await _v1_deployment(redis, spec)
    result = _migrate_command(redis_url)
    assert result.returncode == 0, result.stderr
    assert "workflow: 9 jobs moved" in result.stdout
    assert await _keys(redis, "sbq:v1:*") == []
    await start_workers(1)
    await wait_until(lambda: _completed(admin, 8), within=20, what="every moved job completed")
    completed = {job.job_id: job for job in (await admin.jobs("completed", page_size=100))[0]}
    assert set(completed) == {"w1", "w2", "w3", "p5", "retried", "later", "done", "done-none"}
    for job_id in ("w1", "w2", "w3", "p5", "later"):
        assert completed[job_id].attempts == 1, job_id  # claimed once: a second run is a second attempt
    assert completed["retried"].attempts == 2
    assert [e.error for e in completed["retried"].errors] == ["boom"]
    started = completed["later"].started_at
    assert started is not None
    assert started >= times["due"]
    assert (await admin.counts()).failed == 1


async def _completed(admin: QueueAdmin, at_least: int) -> bool:
    counts = await admin.counts()
    return counts.completed >= at_least and counts.waiting + counts.delayed + counts.active == 0


async def test_history_reads_in_the_admin_as_v1_wrote_it(redis: Redis, spec: QueueSpec, admin: QueueAdmin) -> None:
    times = await _v1_deployment(redis, spec)
    await migrate_queue(redis, "workflow")
    done = await admin.job("done")
    assert (done.state, done.result, done.attempts) == (JobState.COMPLETED, {"rows": 4}, 1)
    assert (done.started_at, done.finished_at) == (times["now"] - 250, times["now"] - 200)
    none = await admin.job("done-none")
    assert (none.state, none.result, none.finished_at) == (JobState.COMPLETED, None, times["now"] - 190)
    assert await _answer(redis.hget("sbq:v3:{workflow}:j:done-none", "r")) is None  # as v3 writes a None result
    dead = await admin.job("dead")
    assert (dead.state, dead.attempts, dead.finished_at) == (JobState.FAILED, 3, times["now"] - 180)
    assert [e.attempt for e in dead.errors] == [1, 2, 3]
    listed = [job.job_id for job in (await admin.jobs("completed"))[0]]
    assert listed == ["done-none", "done"]  # newest first
    assert [job.job_id for job in (await admin.jobs("waiting"))[0]] == ["p5", "w1", "w2", "w3"]
    assert (await admin.job("retried")).attempts == 1
    assert "workflow" in await declared(redis)


async def test_queue_state_moves_with_the_jobs(redis: Redis, spec: QueueSpec) -> None:
    times = await _v1_deployment(redis, spec)
    await redis.set(V1 + "paused", 1)
    await redis.set(V1 + "hold", 1, px=60_000)
    await _answer(redis.rpush(V1 + "rl", f"{times['now']}:3"))
    await redis.set(V1 + "rln", 3)
    await redis.zadd(V1 + "rk:tenant-1", {"a": times["now"]})
    await redis.pexpire(V1 + "rk:tenant-1", 60_000)
    await migrate_queue(redis, "workflow")
    v3 = "sbq:v3:{workflow}:"
    assert int(await redis.get(v3 + "seq")) == 11
    assert await redis.exists(v3 + "paused") == 1
    assert 0 < await redis.pttl(v3 + "hold") <= 60_000
    assert await _answer(redis.lrange(v3 + "rl", 0, -1)) == [f"{times['now']}:3".encode()]
    assert await redis.get(v3 + "rln") == b"3"
    assert await redis.zcard(v3 + "rk:tenant-1") == 1
    assert await redis.pttl(v3 + "rk:tenant-1") > 0
    assert await _answer(redis.hget(v3 + "schedules", "nightly")) == str(times["now"] - 1000).encode()
    assert await redis.zcard(v3 + "workers") == 0  # v1's heartbeats are no v3 worker's
    assert await _keys(redis, "sbq:v1:*") == []
    assert await _keys(redis, "sbq:v2:*") == []


async def test_running_the_migration_again_changes_nothing(redis: Redis, redis_url: str, spec: QueueSpec) -> None:
    await _v1_deployment(redis, spec)
    await migrate_queue(redis, "workflow")
    before = {key: await redis.dump(key) for key in await _keys(redis, "*")}
    result = _migrate_command(redis_url)
    assert (result.returncode, result.stdout.strip()) == (0, "nothing under sbq:v1 or sbq:v2: nothing to move")
    again = await migrate_queue(redis, "workflow")
    assert (again.moved, again.locked) == (0, False)
    assert {key: await redis.dump(key) for key in await _keys(redis, "*")} == before


async def test_a_worker_moves_its_queue_at_start_up_and_reaps_a_dead_v1_workers_job(
    redis: Redis, spec: QueueSpec, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    now = await _now_ms(redis)
    await _v1_job(redis, "running", enqueued=now - 500, a=1, s=now - 400, w="old-host:7:abc")
    await redis.zadd(V1 + "active", {ACTIVE_PIN: float("inf"), "running": now - 100})  # its lease ran out
    await _v1_job(redis, "queued", enqueued=now - 300)
    await _answer(redis.rpush(V1 + "wait0", "queued"))
    await start_workers(1)
    await wait_until(lambda: _completed(admin, 2), within=20, what="the moved jobs completed")
    running = await admin.job("running")
    assert (running.state, running.attempts) == (JobState.COMPLETED, 2)
    assert [e.error for e in running.errors] == ["stalled: worker old-host:7:abc lost its lease"]
    assert (await admin.job("queued")).attempts == 1
    assert await _keys(redis, "sbq:v1:*") == []


async def test_a_running_v1_job_keeps_its_lease(redis: Redis, admin: QueueAdmin) -> None:
    now = await _now_ms(redis)
    await _v1_job(redis, "running", enqueued=now - 500, a=2, s=now - 400, w="old-host:7:abc")
    await redis.zadd(V1 + "active", {ACTIVE_PIN: float("inf"), "running": now + 60_000})
    await migrate_queue(redis, "workflow")
    job = await admin.job("running")
    assert (job.state, job.attempts, job.started_at) == (JobState.ACTIVE, 2, now - 400)
    assert await redis.zscore("sbq:v3:{workflow}:active", "running") == now + 60_000
    assert (
        await _answer(redis.hget("sbq:v3:{workflow}:lease", "running")) == f"old-host:7:abc\0{2}\0{now - 400}".encode()
    )


async def test_an_old_job_whose_id_the_current_layout_holds_stays_behind_and_is_reported(
    redis: Redis, redis_url: str, spec: QueueSpec, admin: QueueAdmin
) -> None:
    now = await _now_ms(redis)
    await _v1_job(redis, "same", enqueued=now)
    await _v1_job(redis, "other", enqueued=now)
    await _answer(redis.rpush(V1 + "wait0", "same", "other"))
    fixed = f"\x000\x001\x00{now}\x00user_variables_update\x00"
    await _answer(redis.hset("sbq:v3:{workflow}:j:same", mapping={"x": fixed, "d": "{}"}))
    await _answer(redis.rpush("sbq:v3:{workflow}:wait0", "same"))
    result = _migrate_command(redis_url)
    assert result.returncode == 1
    assert "workflow: 1 jobs moved; left in an older layout, id taken in the next: same" in result.stdout
    assert await _answer(redis.hget("sbq:v2:{workflow}:j:same", "n")) == b"statistics_aggregation"
    assert (await admin.job("same")).name == "user_variables_update"
    assert [job.job_id for job in (await admin.jobs("waiting"))[0]] == ["other", "same"]


async def test_a_queue_another_process_is_moving_is_left_to_it(redis: Redis) -> None:
    await _v1_job(redis, "queued", enqueued=int(time.time() * 1000))
    await _answer(redis.rpush(V1 + "wait0", "queued"))
    await redis.set("sbq:v3:{workflow}:migrating", "someone", px=10_000)
    result = await migrate_queue(redis, "workflow")
    assert (result.locked, result.moved) == (True, 0)
    assert await _answer(redis.lrange(V1 + "wait0", 0, -1)) == [b"queued"]
    await redis.delete("sbq:v3:{workflow}:migrating")
    assert (await migrate_queue(redis, "workflow")).moved == 1
    assert await _answer(redis.hexists(REGISTRY_KEY, "workflow")) == 0  # v1 never declared it: nothing to copy
