"""Inspection and control of one queue: counts, listings, job detail, retry/remove/promote,
clean, pause/resume, drain, retry-all-failed, and the live event stream.

Plain async Python over the same Redis keys the workers use; the gRPC admin service and the
gateway build on this class.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from runtime.queue import codec, lua_admin
from runtime.queue.events import watch_events
from runtime.queue.keys import ACTIVE_JOBS, JOB_ID_PATTERN, QUEUE_NAME_PATTERN, QueueKeys
from runtime.queue.models import JobInfo, JobState, QueueCounts, QueueEvent
from runtime.queue.spec import QueueSpec

_STATES = [s.value for s in JobState]
_NEWEST_FIRST = {JobState.COMPLETED, JobState.FAILED}
MAX_PAGE_SIZE = 1000
"""The largest page :meth:`QueueAdmin.jobs` returns."""
SUMMARY_FIELDS = (b"x", b"l", b"e", b"g", b"f")
"""The job hash fields a listing reads: everything but the data (``d``) and the result (``r``), which
may be as large as the payload limit each and are for the detail view (:meth:`QueueAdmin.job`)."""


def _check_job_id(job_id: str) -> None:
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise InvalidArgument("job_id", f"must match {JOB_ID_PATTERN.pattern}")


def _with_lease(h: dict[bytes, bytes], lease: bytes | None) -> dict[bytes, bytes]:
    """A job's hash as it reads with its running attempt, if any, counted (see ``keys``)."""
    if lease is None or not h:
        return h
    return {**h, b"l": lease}


def _finished(h: dict[bytes, bytes], score: float | None) -> dict[bytes, bytes]:
    """A job's hash with its finish: a completed job's is its score in ``completed`` (see ``keys``)."""
    if score is None or not h or b"f" in h:
        return h
    return {**h, b"f": b"%d" % score}


class QueueAdmin:
    def __init__(self, queue: str | QueueSpec, redis: Redis) -> None:
        self.spec = queue if isinstance(queue, QueueSpec) else None
        self.name = queue.name if isinstance(queue, QueueSpec) else queue
        if not QUEUE_NAME_PATTERN.fullmatch(self.name):
            raise InvalidArgument("queue", f"must match {QUEUE_NAME_PATTERN.pattern}")
        self.keys = QueueKeys(self.name)
        self.redis = redis
        self._s = {name: redis.register_script(getattr(lua_admin, name)) for name in _SCRIPTS}

    # ---- inspection ------------------------------------------------------------------------
    async def counts(self) -> QueueCounts:
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(k.wait)
            pipe.zcount(k.active, *ACTIVE_JOBS)
            for key in (k.delayed, k.completed, k.failed):
                pipe.zcard(key)
            pipe.llen(k.wait0)
            pipe.exists(k.paused)
            waiting, active, delayed, completed, failed, waiting0, paused = await pipe.execute()
        waiting += waiting0
        return QueueCounts(waiting, active, delayed, completed, failed, waiting if paused else 0)

    async def is_paused(self) -> bool:
        return bool(await self.redis.exists(self.keys.paused))

    async def jobs(self, state: str, *, page: int = 1, page_size: int = 50) -> tuple[list[JobInfo], int]:
        """One page (1-based) of jobs in ``state`` and the total in that state, as summaries: their
        ``data`` is ``{}`` and ``result`` None (see :data:`SUMMARY_FIELDS`).

        Waiting jobs come in the order they will start; active by lease; delayed by due time;
        completed and failed newest first.
        """
        job_state = self._state(state)
        if page < 1:
            raise InvalidArgument("page", "must be >= 1")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be within 1..{MAX_PAGE_SIZE}")
        key = self.keys.state_set(job_state.value)
        start, stop = (page - 1) * page_size, page * page_size - 1
        finished: list[float | None] = []
        if job_state is JobState.WAITING:
            ids, total = await self._waiting_ids(start, stop)
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                if job_state in _NEWEST_FIRST:
                    pipe.zrevrange(key, start, stop, withscores=True)
                    pipe.zcard(key)
                elif job_state is JobState.ACTIVE:
                    pipe.zrangebyscore(key, *ACTIVE_JOBS, start=start, num=page_size)
                    pipe.zcount(key, *ACTIVE_JOBS)
                else:
                    pipe.zrange(key, start, stop)
                    pipe.zcard(key)
                listed, total = await pipe.execute()
            ids = listed
            if job_state in _NEWEST_FIRST:  # (id, score) pairs: a completed job's finish is its score
                ids, finished = [raw for raw, _ in listed], [score for _, score in listed]
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw in ids:
                pipe.hmget(self.keys.job(raw.decode()), list(SUMMARY_FIELDS))
            if job_state is JobState.ACTIVE and ids:
                pipe.hmget(self.keys.lease, list(ids))
            rows = await pipe.execute()
        leases = rows.pop() if job_state is JobState.ACTIVE and ids else [None] * len(ids)
        hashes = [
            _finished(_with_lease({f: v for f, v in zip(SUMMARY_FIELDS, row, strict=True) if v is not None}, lease), at)
            for row, lease, at in zip(rows, leases, finished or [None] * len(ids), strict=True)
        ]
        found = [
            JobInfo.from_hash(self.name, raw.decode(), job_state, h)
            for raw, h in zip(ids, hashes, strict=True)
            if b"x" in h
        ]
        return found, int(total)

    async def _waiting_ids(self, start: int, stop: int) -> tuple[list[bytes], int]:
        """Waiting ids ``start..stop`` in start order: the ``wait`` ZSET, then the ``wait0`` list."""
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrange(k.wait, start, stop)
            pipe.zcard(k.wait)
            pipe.llen(k.wait0)
            ranked, in_set, in_list = await pipe.execute()
        ids = list(ranked)
        if stop >= in_set:
            ids += await self.redis.execute_command("LRANGE", k.wait0, max(start - in_set, 0), stop - in_set)
        return ids, int(in_set) + int(in_list)

    async def job(self, job_id: str) -> JobInfo:
        _check_job_id(job_id)
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(k.job(job_id))
            pipe.hget(k.lease, job_id)
            for name in _STATES:
                pipe.zscore(k.state_set(name), job_id)
            h, lease, *scores = await pipe.execute()
        if b"x" not in h:  # none, or a stray progress write after the job was removed
            raise NotFound(f"job {job_id!r} not found in queue {self.name!r}")
        state = next((JobState(s) for s, score in zip(_STATES, scores, strict=True) if score is not None), None)
        if state is None:  # in no sorted set: waiting at priority 0 (the wait0 list), or the hash says
            state = JobState.FAILED if b"f" in h and b"r" not in h else JobState.WAITING
        finished = scores[_STATES.index(JobState.COMPLETED.value)]
        return JobInfo.from_hash(self.name, job_id, state, _finished(_with_lease(h, lease), finished))

    async def workers(self, *, alive_within_s: float = 10.0) -> list[str]:
        since = int((time.time() - alive_within_s) * 1000)
        return [w.decode() for w in await self.redis.zrangebyscore(self.keys.workers, since, "+inf")]

    def events(self, *, subscribed: asyncio.Event | None = None) -> AsyncIterator[QueueEvent]:
        """Live job events of this queue (:func:`runtime.queue.events.watch_events`)."""
        return watch_events(self.redis, [self.name], subscribed=subscribed)

    # ---- control -------------------------------------------------------------------------------
    async def retry(self, job_id: str) -> None:
        """Run a failed (or completed) job again with a fresh budget of attempts; history is kept."""
        _check_job_id(job_id)
        self._check(await self._run("RETRY", job_id), job_id, "is not failed or completed")

    async def remove(self, job_id: str) -> None:
        _check_job_id(job_id)
        self._check(await self._run("REMOVE", job_id), job_id, "is active; it cannot be removed while it runs")

    async def promote(self, job_id: str) -> None:
        """Make a delayed job (or one backing off before a retry) due now."""
        _check_job_id(job_id)
        self._check(await self._run("PROMOTE", job_id), job_id, "is not delayed")

    async def retry_all_failed(self) -> int:
        total = 0
        while True:
            moved = int(await self._run("RETRY_ALL_FAILED", 1000))
            total += moved
            if moved < 1000:
                return total

    async def clean(self, state: str, *, grace_s: float = 0.0, limit: int = 1000) -> list[str]:
        """Remove up to ``limit`` jobs of ``state`` older than ``grace_s`` (active cannot be cleaned)."""
        job_state = self._state(state)
        if job_state is JobState.ACTIVE:
            raise InvalidArgument("state", "active jobs cannot be cleaned")
        if grace_s < 0:
            raise InvalidArgument("grace", "must be >= 0")
        if limit < 1:
            raise InvalidArgument("limit", "must be >= 1")
        suffix = self.keys.state_set(job_state.value).removeprefix(self.keys.prefix)
        removed = await self._run("CLEAN", suffix, int(grace_s * 1000), limit)
        return [r.decode() for r in removed]

    async def drain(self, *, include_delayed: bool = False) -> int:
        """Remove every waiting (and optionally delayed) job; active ones are left to finish."""
        total = 0
        while True:
            n = int(await self._run("DRAIN", "1" if include_delayed else "0", 1000))
            total += n
            if n == 0:
                return total

    async def pause(self) -> None:
        """Workers stop taking new jobs of this queue; active ones finish."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.paused, 1)
            pipe.publish(self.keys.events, codec.dumps({"event": "paused", "jobId": "*"}))
            await pipe.execute()

    async def resume(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.paused)
            pipe.rpush(self.keys.notify, 1)
            pipe.publish(self.keys.events, codec.dumps({"event": "resumed", "jobId": "*"}))
            await pipe.execute()

    def overview(self, counts: QueueCounts, paused: bool) -> dict[str, Any]:
        """The queue as the admin API names it (rate limit and concurrency need the spec)."""
        spec = self.spec
        rate = spec.rate_limit if spec else None
        return {
            "name": self.name,
            "paused": paused,
            "counts": counts.as_dict(),
            "rateLimit": {"max": rate.max_jobs, "periodMs": rate.period_ms} if rate else None,
            "concurrency": spec.concurrency if spec else None,
        }

    # ---- helpers -----------------------------------------------------------------------------
    async def _run(self, script: str, *args: Any) -> Any:
        return await self._s[script](keys=[self.keys.prefix], args=list(args))

    def _check(self, outcome: Any, job_id: str, refusal: str) -> None:
        if int(outcome) == 0:
            raise NotFound(f"job {job_id!r} not found in queue {self.name!r}")
        if int(outcome) < 0:
            raise FailedPrecondition(f"job {job_id!r} {refusal}")

    @staticmethod
    def _state(state: str) -> JobState:
        try:
            return JobState(state)
        except ValueError:
            raise InvalidArgument("state", f"must be one of {', '.join(_STATES)}") from None


_SCRIPTS = ("RETRY", "RETRY_ALL_FAILED", "REMOVE", "PROMOTE", "CLEAN", "DRAIN")
