"""Redis CPU per job of the queue layer: per script from ``INFO commandstats`` (the microseconds
Redis itself spent in each call, so the figure holds on a loaded machine), and per job of a real
worker run from Redis's and the worker's process CPU, with the multi-process projection built on
the two.

Per script: this process drives the scripts exactly as a worker does (the worker's own script
objects and arguments: claims of :data:`runtime.queue.worker.CLAIM_BATCH`, completions in
batches of :data:`runtime.queue.worker.COMPLETE_BATCH`, retention as the bench queue's), one
script kind at a time with the statistics reset before each, so ``cmdstat_evalsha`` is that
script's alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runtime.queue import JobRequest, QueueClient
from runtime.queue.codec import encode_result
from runtime.queue.spec import QueueSpec
from runtime.queue.worker import CLAIM_BATCH, CLAIM_FIELDS, COMPLETE_BATCH, Worker

CPU_TARGET_US = 12.0
"""Redis CPU per job in the worker's scripts (claim + complete), every feature on: what Redis spends
per job a worker process runs, so what bounds how many worker processes one Redis core serves."""
SINGLE_ENQUEUES = 2_000


async def evalsha_usec(redis: Redis) -> tuple[int, int]:
    """(calls, microseconds) of EVALSHA since the last ``CONFIG RESETSTAT``."""
    stats: dict[str, Any] = await redis.info("commandstats")
    row = stats.get("cmdstat_evalsha") or {}
    return int(row.get("calls", 0)), int(row.get("usec", 0))


async def redis_cpu_s(redis: Redis) -> float:
    """Seconds of CPU the redis-server process has used (user + system), from ``INFO cpu``."""
    cpu: dict[str, Any] = await redis.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def process_cpu_s(pid: int) -> float:
    """Seconds of CPU process ``pid`` has used (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ScriptCost:
    script: str
    jobs: int
    calls: int
    usec: int
    process_s: float
    """CPU the redis-server process used meanwhile (user + system: the calls' network reads and
    writes too, and nothing of the time Redis waited for a core)."""

    @property
    def per_job(self) -> float:
        return self.usec / self.jobs

    @property
    def per_call(self) -> float:
        return self.usec / max(self.calls, 1)

    @property
    def process_per_job(self) -> float:
        return self.process_s / self.jobs * 1e6


async def _measured(redis: Redis, script: str, jobs: int, run: Any) -> ScriptCost:
    await redis.config_resetstat()
    before = await redis_cpu_s(redis)
    await run()
    after = await redis_cpu_s(redis)
    calls, usec = await evalsha_usec(redis)
    return ScriptCost(script, jobs, calls, usec, after - before)


async def script_costs(redis: Redis, spec: QueueSpec, jobs: int) -> list[ScriptCost]:
    """Redis CPU of each hot-path script over ``jobs`` no-op jobs (the queue starts empty)."""
    client = QueueClient(spec, redis)
    worker = Worker(spec, redis, worker_id="bench-cpu")
    prefix = spec.keys.prefix
    claimed: list[tuple[str, int]] = []

    async def enqueue_bulk() -> None:
        await client.enqueue_many([JobRequest("noop") for _ in range(jobs)])

    async def claim_all() -> None:
        while True:
            reply = await worker._claim(
                keys=[prefix], args=[CLAIM_BATCH, worker._lease_ms, worker.worker_id, *worker._limits]
            )
            rows = reply[2:]
            if not rows:
                return
            for i in range(0, len(rows), CLAIM_FIELDS):
                claimed.append((rows[i].decode(), int(rows[i + 3])))

    async def complete_all() -> None:
        result = encode_result(None)
        for start in range(0, len(claimed), COMPLETE_BATCH):
            batch = claimed[start : start + COMPLETE_BATCH]
            args: list[Any] = [worker.worker_id, spec.retention.completed, len(batch)]
            for job_id, attempt in batch:
                args.extend((job_id, attempt, result))
            lost = await worker._complete(keys=[prefix], args=args)
            if lost:
                raise RuntimeError(f"{len(lost)} completions refused: the measurement is broken")

    async def enqueue_single() -> None:
        for _ in range(SINGLE_ENQUEUES):
            await client.enqueue("noop")

    costs = [
        await _measured(redis, "enqueue_many (ENQUEUE, 5,000 a call)", jobs, enqueue_bulk),
        await _measured(redis, f"claim (CLAIM, {CLAIM_BATCH} a call)", jobs, claim_all),
        await _measured(redis, f"complete (COMPLETE, {COMPLETE_BATCH} a call)", jobs, complete_all),
        await _measured(redis, "enqueue one at a time (ENQUEUE, 1 a call)", SINGLE_ENQUEUES, enqueue_single),
    ]
    if len(claimed) != jobs:
        raise RuntimeError(f"claimed {len(claimed)} of {jobs} jobs: the measurement is broken")
    return costs


@dataclass(frozen=True)
class RunCpu:
    """CPU spent by Redis and by the one worker process while a real worker drained ``jobs``."""

    jobs: int
    seconds: float
    redis_cpu_s: float
    evalsha_usec: int
    worker_cpu_s: float

    @property
    def redis_us(self) -> float:
        return self.redis_cpu_s / self.jobs * 1e6

    @property
    def worker_us(self) -> float:
        return self.worker_cpu_s / self.jobs * 1e6

    @property
    def scripts_us(self) -> float:
        return self.evalsha_usec / self.jobs
