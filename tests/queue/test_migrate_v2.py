"""Moving a running v2 deployment's queue data to key layout v3 (runtime.queue.migrate).

The v2 data is written here as v2's scripts wrote it (commit 8e66d1d, runtime/queue/lua_worker.py
and lua_admin.py): a job HASH ``n d m t`` at enqueue, ``p k o`` when not at their default; the
running attempt in the queue's ``lease`` HASH (``worker NUL attempt NUL started``) and, once it
ended, in the job's ``l``; ``e`` errors, ``r`` a result other than None, ``f`` a dead letter's
finish, ``g`` progress, ``q`` the saved wait score of a job its rate key deferred, ``m0`` the
original max attempts of a job retried by hand; ``active`` and ``lease`` each hold a pin.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

import pytest
from redis.asyncio import Redis

from devsupport.waiting import wait_until
from runtime.queue import JobState, QueueAdmin, QueueSpec
from runtime.queue.migrate import migrate_queue
from runtime.queue.registry import declaration_field, declared
from tests.queue.harness import StartWorkers
from tests.queue.test_migrate import _completed, _keys, _migrate_command, _now_ms

pytestmark = pytest.mark.slow
V2 = "sbq:v2:{workflow}:"
V3 = "sbq:v3:{workflow}:"
SPAN = 2**44
PIN = "~" * 100
NAME = "statistics_aggregation"


async def _answer(call: Awaitable[Any] | Any) -> Any:
    return await call


def _attempt(worker: str, attempt: int, started: int) -> str:
    return f"{worker}\0{attempt}\0{started}"


async def _v2_job(redis: Redis, job_id: str, *, enqueued: int, priority: int = 0, **fields: Any) -> None:
    h: dict[str, Any] = {"n": NAME, "d": "{}", "m": 3, "t": enqueued, **fields}
    if priority:
        h["p"] = priority
    await _answer(redis.hset(V2 + f"j:{job_id}", mapping=h))


async def _v2_deployment(redis: Redis, spec: QueueSpec, *, running_deadline: int | None = None) -> dict[str, int]:
    """A v2 queue mid-flight: a job in every state (and the variants of each), its pins, its state
    keys and its registry entry. Returns the clock it was written at and the delayed job's due time."""
    now = await _now_ms(redis)
    error = {"attempt": 1, "error": "boom", "traceback": "", "at": now - 50}
    # waiting: priority 0 (wait0), a priority (wait), a put-back at the head of priority 0, a job
    # retried by hand after three attempts (m0 its original budget)
    for job_id in ("w1", "w2", "w3"):
        await _v2_job(redis, job_id, enqueued=now - 100)
    await _v2_job(redis, "again", enqueued=now - 900, m=4, m0=3, l=_attempt("w", 3, now - 700), e=json.dumps([error]))
    await _answer(redis.rpush(V2 + "wait0", "w1", "w2", "w3", "again"))
    await _v2_job(redis, "p5", priority=5, enqueued=now - 90)
    await _v2_job(redis, "back", enqueued=now - 95, o=json.dumps({"to": 2.5}))
    await redis.zadd(V2 + "wait", {"p5": 5 * SPAN + 7, "back": 10 * SPAN})
    # delayed: a retry now due, a job due later, one its rate key deferred (its wait score saved)
    await _v2_job(redis, "retried", enqueued=now - 80, l=_attempt("w", 1, now - 60), e=json.dumps([error]))
    due = now + 1500
    await _v2_job(redis, "later", enqueued=now - 70)
    await _v2_job(redis, "keyed", enqueued=now - 75, k="tenant-1", q=str(10 * SPAN + 9))
    await redis.zadd(V2 + "delayed", {"retried": now - 10, "later": due, "keyed": now - 5})
    # active: one running (its second attempt) and one whose lease ran out
    deadline = running_deadline if running_deadline is not None else now + 60_000
    await _v2_job(redis, "running", enqueued=now - 1000, l=_attempt("old-host:7:abc", 1, now - 900))
    await _v2_job(redis, "stalled", enqueued=now - 500)
    await redis.zadd(V2 + "active", {PIN: float("inf"), "running": deadline, "stalled": now - 100})
    leases = {PIN: "", "running": _attempt("old-host:7:abc", 2, now - 400), "stalled": _attempt("gone", 1, now - 450)}
    await _answer(redis.hset(V2 + "lease", mapping=leases))
    # history: completed with a result (and progress) and with None; a dead letter
    await _v2_job(redis, "done", enqueued=now - 300, l=_attempt("w", 1, now - 250), r='{"rows": 4}', g="100")
    await _v2_job(redis, "done-none", enqueued=now - 300, l=_attempt("w", 1, now - 240))
    await redis.zadd(V2 + "completed", {"done": now - 200, "done-none": now - 190})
    dead = [{**error, "attempt": i} for i in (1, 2, 3)]
    await _v2_job(redis, "dead", enqueued=now - 400, l=_attempt("w", 3, now - 260), e=json.dumps(dead), f=now - 180)
    await redis.zadd(V2 + "failed", {"dead": now - 180})
    await redis.set(V2 + "seq", 11)
    await _answer(redis.hset(V2 + "schedules", "nightly", str(now - 1000)))
    await redis.zadd(V2 + "workers", {"old-worker": now - 5000})
    await _answer(redis.hset("sbq:v2:registry", mapping=dict(declaration_field(spec))))
    return {"now": now, "due": due}


async def test_every_v2_job_reads_in_v3_as_v2_held_it(redis: Redis, spec: QueueSpec, admin: QueueAdmin) -> None:
    times = await _v2_deployment(redis, spec)
    now = times["now"]
    result = await migrate_queue(redis, "workflow")
    assert (result.moved, result.dropped, result.conflicts) == (14, 0, [])
    assert await _keys(redis, "sbq:v2:*") == []
    assert [job.job_id for job in (await admin.jobs("waiting"))[0]] == ["p5", "back", "w1", "w2", "w3", "again"]
    assert [job.job_id for job in (await admin.jobs("delayed"))[0]] == ["retried", "keyed", "later"]
    p5, back, again = await admin.job("p5"), await admin.job("back"), await admin.job("again")
    assert (p5.state, p5.priority, p5.name, p5.data, p5.enqueued_at) == (
        JobState.WAITING,
        5,
        NAME,
        {},
        now - 90,
    )
    assert (again.attempts, again.max_attempts, again.started_at, len(again.errors)) == (3, 4, now - 700, 1)
    keyed = await admin.job("keyed")
    assert (keyed.state, keyed.rate_key, keyed.max_attempts) == (JobState.DELAYED, "tenant-1", 3)
    assert await _answer(redis.hget(V3 + "j:keyed", "q")) == str(10 * SPAN + 9).encode()
    packed = f'\x000\x003\x00{now - 95}\x00{NAME}\x00{{"to": 2.5}}'  # key, priority, max, enqueued, name, options
    assert await _answer(redis.hget(V3 + "j:back", "x")) == packed.encode()
    assert back.priority == 0
    running = await admin.job("running")
    assert (running.state, running.attempts, running.started_at) == (JobState.ACTIVE, 2, now - 400)
    assert await redis.zscore(V3 + "active", "running") == now + 60_000
    assert await _answer(redis.hget(V3 + "lease", "running")) == _attempt("old-host:7:abc", 2, now - 400).encode()
    assert await redis.zscore(V3 + "active", PIN) == float("inf")
    done, none, dead = await admin.job("done"), await admin.job("done-none"), await admin.job("dead")
    assert (done.state, done.result, done.progress) == (JobState.COMPLETED, {"rows": 4}, 100)
    assert done.finished_at == now - 200
    assert (none.state, none.result, none.attempts) == (JobState.COMPLETED, None, 1)
    assert (dead.state, dead.attempts, dead.finished_at, [e.attempt for e in dead.errors]) == (
        JobState.FAILED,
        3,
        now - 180,
        [1, 2, 3],
    )
    assert int(await redis.get(V3 + "seq")) == 11
    assert await _answer(redis.hget(V3 + "schedules", "nightly")) == str(now - 1000).encode()
    assert "workflow" in await declared(redis)


async def test_v2_jobs_run_once_on_v3_workers_after_the_command(
    redis: Redis, redis_url: str, spec: QueueSpec, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    now = await _now_ms(redis)
    times = await _v2_deployment(redis, spec, running_deadline=now - 100)  # its v2 worker died too
    result = _migrate_command(redis_url)
    assert result.returncode == 0, result.stderr
    assert "workflow: 14 jobs moved" in result.stdout
    await start_workers(1)
    await wait_until(lambda: _completed(admin, 13), within=20, what="every moved job completed")
    completed = {job.job_id: job for job in (await admin.jobs("completed", page_size=100))[0]}
    assert set(completed) == {"w1", "w2", "w3", "again", "p5", "back", "retried", "later", "keyed", "running"} | {
        "stalled",
        "done",
        "done-none",
    }
    for job_id in ("w1", "w2", "w3", "p5", "back", "later", "keyed"):
        assert completed[job_id].attempts == 1, job_id
    assert (completed["retried"].attempts, completed["again"].attempts, completed["running"].attempts) == (2, 4, 3)
    assert [e.error for e in completed["stalled"].errors] == ["stalled: worker gone lost its lease"]
    started = completed["later"].started_at
    assert started is not None
    assert started >= times["due"]
    assert (await admin.counts()).failed == 1


async def test_running_the_v2_migration_again_changes_nothing(redis: Redis, redis_url: str, spec: QueueSpec) -> None:
    await _v2_deployment(redis, spec)
    await migrate_queue(redis, "workflow")
    before = {key: await redis.dump(key) for key in await _keys(redis, "*")}
    result = _migrate_command(redis_url)
    assert (result.returncode, result.stdout.strip()) == (0, "nothing under sbq:v1 or sbq:v2: nothing to move")
    assert {key: await redis.dump(key) for key in await _keys(redis, "*")} == before
