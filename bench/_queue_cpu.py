"""Redis CPU per job of the queue layer: per script from ``INFO commandstats`` (the microseconds
Redis itself spent in each call, so the figure holds on a loaded machine), and per job of a real
worker run from Redis's and the worker's process CPU, with the multi-process projection built on
the two.

Per script: this process drives the scripts exactly as a worker does (the worker's own script
objects and arguments: claims of :data:`runtime.queue.worker.CLAIM_BATCH`, completions in
batches of :data:`runtime.queue.worker.COMPLETE_BATCH`, retention as the bench queue's), claims
and completions interleaved as a worker runs them; ``cmdstat_evalsha`` is read around every call,
so each script's microseconds are its own. The redis-server process CPU of the two together is
shared out between them in proportion to those microseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runtime.queue import JobRequest, QueueClient
from runtime.queue.execution import NO_RESULT, complete_args
from runtime.queue.spec import QueueSpec
from runtime.queue.worker import CLAIM_BATCH, COMPLETE_BATCH, Worker

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
    pending: list[tuple[str, int]] = []
    usec = {"claim": 0, "complete": 0}
    calls = {"claim": 0, "complete": 0}
    claimed = 0
    split = True  # read the usec around every call (a first pass); not in the pass whose CPU counts

    async def enqueue_bulk() -> None:
        await client.enqueue_many([JobRequest("noop") for _ in range(jobs)])

    async def timed(script: str, call: Any) -> Any:
        # The usec EVALSHA gained over this call: the script's alone (nothing else runs here).
        if not split:
            return await call
        before = (await evalsha_usec(redis))[1]
        reply = await call
        usec[script] += (await evalsha_usec(redis))[1] - before
        calls[script] += 1
        return reply

    async def complete(batch: list[tuple[str, int]]) -> None:
        args = complete_args(worker.worker_id, spec.retention.completed, [(i, a, NO_RESULT) for i, a in batch])
        lost = await timed("complete", worker._complete(keys=[prefix], args=args))
        if lost:
            raise RuntimeError(f"{len(lost)} completions refused: the measurement is broken")

    async def run_as_a_worker() -> None:
        # Claims and completions interleaved as a worker of no-op jobs runs them, so the active set
        # holds what a worker's does (a claim's jobs and the completions not yet flushed), never
        # the whole backlog at once.
        nonlocal claimed
        while True:
            jobs = (await timed("claim", worker.claim(CLAIM_BATCH)))[2]
            pending.extend((job.job_id, job.attempt) for job in jobs)
            claimed += len(jobs)
            while len(pending) >= (COMPLETE_BATCH if jobs else 1):
                batch, pending[:] = pending[:COMPLETE_BATCH], pending[COMPLETE_BATCH:]
                await complete(batch)
            if not jobs:
                return

    async def enqueue_single() -> None:
        for _ in range(SINGLE_ENQUEUES):
            await client.enqueue("noop")

    bulk = await _measured(redis, "enqueue_many (ENQUEUE, 5,000 a call)", jobs, enqueue_bulk)
    await redis.config_resetstat()
    await run_as_a_worker()
    # Again without the INFO calls around each script, for the redis-server process CPU, which
    # is shared out between the two scripts in proportion to their usec in the first pass.
    split = False
    await enqueue_bulk()
    both = await _measured(redis, "claim + complete", jobs, run_as_a_worker)
    if claimed != 2 * jobs:
        raise RuntimeError(f"claimed {claimed} of {2 * jobs} jobs: the measurement is broken")
    total_usec = max(usec["claim"] + usec["complete"], 1)
    claim_cost, complete_cost = (
        ScriptCost(name, jobs, calls[key], usec[key], both.process_s * usec[key] / total_usec)
        for key, name in (
            ("claim", f"claim (CLAIM, {CLAIM_BATCH} a call)"),
            ("complete", f"complete (COMPLETE, {COMPLETE_BATCH} a call)"),
        )
    )
    single = await _measured(redis, "enqueue one at a time (ENQUEUE, 1 a call)", SINGLE_ENQUEUES, enqueue_single)
    return [bulk, claim_cost, complete_cost, single]


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
