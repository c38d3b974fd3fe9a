"""One claimed job: its arq-style ``ctx``, and what a failed attempt turns into."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arq.worker import Retry
from redis.asyncio import Redis
from redis.exceptions import DataError, RedisError

from runtime.errors import PermanentError
from runtime.logging import get_logger
from runtime.queue import codec
from runtime.queue.keys import QueueKeys
from runtime.retry import RetryPolicy

log = get_logger("runtime.queue.execution")

MAX_TRACEBACK_CHARS = 8000


NO_RESULT = codec.encode_result(None)
"""A job's result of None as the complete script reads it."""

CLAIM_FIELDS = 9
"""Fields of one job in a claim's reply: id, attempt, the job's packed fixed fields as they are stored
(rate key, priority, max attempts, enqueued, name, options: ``runtime.queue.keys``), data."""


def complete_args(worker_id: str, keep: int, done: Sequence[tuple[str, int, str]]) -> list[str | int]:
    """The complete script's arguments (``lua_worker.COMPLETE``) for ``done`` (id, attempt, result
    JSON): the ids of first attempts whose result is None, then id and attempt of the other jobs
    whose result is None, then id, attempt and result of the rest."""
    first: list[str | int] = []
    plain: list[str | int] = []
    valued: list[str | int] = []
    for job_id, attempt, result in done:
        if result != NO_RESULT:
            valued += (job_id, attempt, result)
        elif attempt == 1:
            first.append(job_id)
        else:
            plain += (job_id, attempt)
    return [worker_id, keep, len(first), len(plain) // 2, len(valued) // 3, *first, *plain, *valued]


def claim_reply(reply: bytes) -> tuple[int, int, list[ClaimedJob]]:
    """The claim script's reply (its fields joined by NUL, see ``lua_worker.CLAIM``): status,
    info and the jobs claimed."""
    parts = reply.split(b"\0")
    if len(parts) < 2 or (len(parts) - 2) % CLAIM_FIELDS:
        raise DataError(f"claim reply of {len(parts)} fields is not status, info and {CLAIM_FIELDS} a job")
    jobs = [ClaimedJob.from_claim(parts[i : i + CLAIM_FIELDS]) for i in range(2, len(parts), CLAIM_FIELDS)]
    return int(parts[0]), int(parts[1]), jobs


@dataclass(slots=True)
class ClaimedJob:
    job_id: str
    name: str
    data: dict[str, Any]
    attempt: int
    max_attempts: int
    enqueued_at: int
    options: dict[str, Any]

    @classmethod
    def from_claim(cls, row: list[Any]) -> ClaimedJob:
        job_id, attempt, _rate_key, _priority, max_attempts, enqueued_at, name, options, data = row
        return cls(
            job_id=job_id.decode(),
            name=name.decode(),
            data=json.loads(data),
            attempt=int(attempt),
            max_attempts=int(max_attempts),
            enqueued_at=int(enqueued_at),
            options=json.loads(options) if options else {},
        )

    def backoff(self, default: RetryPolicy) -> RetryPolicy:
        override = self.options.get("b")
        if not override:
            return default
        base, cap, multiplier, jitter = override
        return RetryPolicy(attempts=self.max_attempts, base=base, cap=cap, multiplier=multiplier, jitter=jitter)


class JobContext(dict[str, Any]):
    """The ``ctx`` a job function receives, keyed as arq's: ``job_id``, ``job_try``,
    ``enqueue_time`` (epoch ms), ``queue``, ``redis``; plus ``await ctx.progress(value)``."""

    def __init__(self, keys: QueueKeys, redis: Redis, job: ClaimedJob, shared: dict[str, Any]) -> None:
        super().__init__(shared)
        self.update(
            job_id=job.job_id,
            job_try=job.attempt,
            max_tries=job.max_attempts,
            enqueue_time=job.enqueued_at,
            queue=keys.queue,
            redis=redis,
        )
        self._keys = keys

    async def hold_remaining_s(self) -> float:
        """Seconds the queue is still held (see :class:`Requeue`); 0.0 when it is not."""
        ms = await self["redis"].pttl(self._keys.hold)
        return ms / 1000 if ms and ms > 0 else 0.0

    async def progress(self, value: Any) -> None:
        """Record progress (any JSON: a percentage, a dict) and publish a ``progress`` event.

        Best effort: progress is information, so a Redis error is logged and the job goes on
        (its outcome is what must reach Redis, and the worker sees to that).
        """
        encoded = codec.encode_field("progress", value)
        job_id = self["job_id"]
        event = codec.dumps({"event": "progress", "jobId": job_id, "progress": value})
        redis: Redis = self["redis"]
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hset(self._keys.job(job_id), "g", encoded)
                pipe.publish(self._keys.events, event)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("job progress not recorded", job_id=job_id, progress=value, error=str(exc))


class Requeue(Exception):
    """Raised by a job: put it back at the head of its priority without using an attempt.

    ``hold_s`` > 0 also stops every worker of the queue from claiming for that long (a provider
    said "retry after"); a longer hold already in place is kept.
    """

    def __init__(self, reason: str = "", *, hold_s: float = 0.0) -> None:
        super().__init__(reason or "requeued")
        self.hold_s = max(hold_s, 0.0)


@dataclass(frozen=True, slots=True)
class FailureDecision:
    entry: str
    """The attempt's error as a JSON object: attempt, error, traceback, at (epoch ms)."""
    retry_delay_ms: int
    """-1: no retry, the job goes to the failed set."""
    error: str
    """The error in one line, as the entry holds it (``TimeoutError: job ran longer than …``)."""


def decide_failure(job: ClaimedJob, exc: BaseException, policy: RetryPolicy, timeout_s: float) -> FailureDecision:
    """Permanent errors are never retried; arq's ``Retry(defer=…)`` names its own delay;
    anything else backs off with ``policy`` until the job's attempts are used up."""
    if isinstance(exc, TimeoutError):
        message = f"TimeoutError: job ran longer than its {timeout_s:g} s timeout"
    else:
        message = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK_CHARS:]
    message = message[:2000]
    entry = codec.dumps({"attempt": job.attempt, "error": message, "traceback": tb, "at": int(time.time() * 1000)})
    if isinstance(exc, PermanentError) or job.attempt >= job.max_attempts:
        return FailureDecision(entry, -1, message)
    if isinstance(exc, Retry) and exc.defer_score is not None:
        return FailureDecision(entry, max(exc.defer_score, 0), message)
    return FailureDecision(entry, int(policy.delay_for(job.attempt) * 1000), message)
