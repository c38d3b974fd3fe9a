"""The queue benchmark's machinery: a redis-server and worker processes started here, and the
measurements the figures in ``bench/queue_bench.py`` are built from."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench._queue_cpu import RunCpu, evalsha_usec, process_cpu_s, redis_cpu_s
from bench._queue_worker import bench_spec
from devsupport.waiting import wait_until
from runtime.queue import JobRequest, QueueAdmin, QueueClient

ROOT = Path(__file__).resolve().parents[1]
PRIORITY_BACKLOG_MIN = 10_000


class Procs:
    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, module: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        full = {**os.environ, "PYTHONPATH": str(ROOT), "BQ_URL": self.url, **env}
        p = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=full,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


def result(name: str, value: float, unit: str, target: str, met: bool) -> dict[str, Any]:
    return {"name": name, "value": round(value, 2), "unit": unit, "target": target, "met": bool(met)}


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 120.0, every: float = 0.005) -> float:
    """Wait for ``check`` (polling every ``every`` s) and return the perf_counter time it held."""
    await wait_until(check, within=within, what=what, interval=every)
    return time.perf_counter()


class Bench:
    def __init__(self, redis: Redis, procs: Procs) -> None:
        self.redis, self.procs = redis, procs
        self.spec = bench_spec({})
        self.client = QueueClient(self.spec, redis)
        self.admin = QueueAdmin(self.spec, redis)

    async def fresh(self) -> None:
        self.procs.stop_all()
        await self.redis.flushall()

    async def workers(self, n: int, **env: str) -> None:
        for _ in range(n):
            self.procs.start("bench._queue_worker", **env)
        await until(lambda: self._workers_at_least(n), f"{n} workers up", within=30)

    async def _workers_at_least(self, n: int) -> bool:
        return len(await self.admin.workers()) >= n

    async def empty(self) -> bool:
        c = await self.admin.counts()
        return c.waiting + c.active + c.delayed == 0

    # 1 ------------------------------------------------------------------------------------
    async def throughput(self, processes: int, jobs: int) -> tuple[float, RunCpu]:
        """Jobs/s of ``processes`` worker processes draining a no-op backlog, and the CPU Redis
        and the workers spent meanwhile."""
        await self.fresh()
        await self.workers(processes)
        await self.admin.pause()
        await self.client.enqueue_many([JobRequest("noop") for _ in range(jobs)])
        pids = [p.pid for p in self.procs.procs]
        redis_before, (_, evalsha_before) = await redis_cpu_s(self.redis), await evalsha_usec(self.redis)
        workers_before = sum(process_cpu_s(pid) for pid in pids)
        t0 = time.perf_counter()
        await self.admin.resume()
        t1 = await until(self.empty, "the queue drained")
        workers_after = sum(process_cpu_s(pid) for pid in pids)
        redis_after, (_, evalsha_after) = await redis_cpu_s(self.redis), await evalsha_usec(self.redis)
        cpu = RunCpu(
            jobs, t1 - t0, redis_after - redis_before, evalsha_after - evalsha_before, workers_after - workers_before
        )
        return jobs / (t1 - t0), cpu

    async def arq_throughput(self, jobs: int) -> float:
        """Bare arq (defaults, max_jobs 50): jobs enqueued one by one while its worker runs."""
        from arq.connections import ArqRedis

        await self.fresh()
        self.procs.start("bench._queue_anchor", "arq", self.procs.url)
        arq = ArqRedis(connection_pool=self.redis.connection_pool)

        async def results_at_least(n: int) -> bool:
            return len([k async for k in self.redis.scan_iter("arq:result:*", count=5000)]) >= n

        # Warm-up: one job through the started worker (imports, connection, first poll) untimed.
        await arq.enqueue_job("noop")
        await until(lambda: results_at_least(1), "arq warm-up job done", within=60, every=0.05)
        t0 = time.perf_counter()
        for _ in range(jobs):
            await arq.enqueue_job("noop")
        t1 = await until(lambda: results_at_least(jobs + 1), "every arq job done", every=0.1)
        return jobs / (t1 - t0)

    async def bullmq_throughput(self, jobs: int) -> float:
        """BullMQ's Python port (concurrency 50): a backlog added while paused, timed from the resume."""
        from bullmq import Queue

        await self.fresh()
        self.procs.start("bench._queue_anchor", "bullmq", self.procs.url)
        queue = Queue("anchor", {"connection": self.procs.url})

        async def completed_at_least(n: int) -> bool:
            return int(await self.redis.zcard("bull:anchor:completed")) >= n

        # Warm-up: one job through the started worker (imports, script loading, first fetch) untimed.
        await queue.add("noop", {})
        await until(lambda: completed_at_least(1), "BullMQ warm-up job done", within=60, every=0.02)
        # As for our layer: the backlog is added while the queue is paused, timed from the resume.
        await queue.pause()
        for start in range(0, jobs, 1000):
            await queue.addBulk([{"name": "noop", "data": {}} for _ in range(start, min(start + 1000, jobs))])
        t0 = time.perf_counter()
        await queue.resume()
        t1 = await until(lambda: completed_at_least(jobs + 1), "every BullMQ job done", every=0.02)
        await queue.close()
        return jobs / (t1 - t0)

    # 2 ------------------------------------------------------------------------------------
    async def enqueue_rates(self, n: int) -> tuple[float, float, float]:
        await self.fresh()
        t0 = time.perf_counter()
        for _ in range(n):
            await self.client.enqueue("noop")
        sequential = n / (time.perf_counter() - t0)

        async def caller(k: int) -> None:
            for _ in range(k):
                await self.client.enqueue("noop")

        t0 = time.perf_counter()
        await asyncio.gather(*(caller(n // 16) for _ in range(16)))
        concurrent = n / (time.perf_counter() - t0)
        bulk_n = 4 * n
        requests = [JobRequest("noop") for _ in range(bulk_n)]
        t0 = time.perf_counter()
        await self.client.enqueue_many(requests)
        bulk = bulk_n / (time.perf_counter() - t0)
        return sequential, concurrent, bulk

    # 3, 4 ------------------------------------------------------------------------------------
    async def probe_latencies(self, rate: float, count: int) -> list[float]:
        await self.fresh()
        await self.workers(1, BQ_KEEP="-1")
        ids = []
        for _ in range(count):
            ids.append(await self.client.enqueue("probe", {"sent": time.time()}))
            await asyncio.sleep(1 / rate)
        await until(self.empty, "the probes done")
        latencies = []
        for job_id in ids:
            job = await self.admin.job(job_id)
            latencies.append(float(job.result) * 1000)
        return latencies

    async def priority_latencies(self, min_waiting: int, *, probes: int, rate: float) -> tuple[list[float], int]:
        """Start delays (ms, from just before the enqueue call) of priority-10 probes sent while a
        saturated worker (one process, c=50) works through a no-op backlog at priority 0.  The
        backlog is sized from the worker's drain rate measured here, before the first probe, so
        that at least ``min_waiting`` jobs still wait at every probe; the fewest seen (the waiting
        count just before each probe) is returned beside the latencies."""
        await self.fresh()
        await self.workers(1, BQ_KEEP="-1")
        probing_s = probes / rate
        await self._backlog(min_waiting + int(probing_s * 20_000))
        # Steady state, and the drain rate: the worker is saturated before the first probe.
        await asyncio.sleep(0.5)
        before, t0 = (await self.admin.counts()).waiting, time.perf_counter()
        await asyncio.sleep(0.5)
        after = (await self.admin.counts()).waiting
        drain_rate = (before - after) / (time.perf_counter() - t0)
        # The probes' loop runs longer than its nominal pace (each probe also reads the counts): room for 2x.
        need = min_waiting + int(drain_rate * probing_s * 2)
        if after < need:
            await self._backlog(need - after)
            await asyncio.sleep(0.5)
        ids: list[str] = []
        fewest = (await self.admin.counts()).waiting
        for _ in range(probes):
            fewest = min(fewest, (await self.admin.counts()).waiting)
            ids.append(await self.client.enqueue("probe", {"sent": time.time()}, priority=10))
            await asyncio.sleep(1 / rate)
        await self.admin.pause()  # the rest of the backlog is not needed for the figure
        await until(lambda: self._all_done(ids), "every priority probe done")
        latencies = []
        for job_id in ids:
            job = await self.admin.job(job_id)
            latencies.append(float(job.result) * 1000)
        return latencies, fewest

    async def _backlog(self, n: int) -> None:
        """``n`` no-op jobs at priority 0 behind the queue's waiting ones, enqueued while it is paused."""
        await self.admin.pause()
        for start in range(0, n, 50_000):
            await self.client.enqueue_many([JobRequest("noop") for _ in range(min(50_000, n - start))])
        await self.admin.resume()

    async def _all_done(self, ids: list[str]) -> bool:
        for job_id in ids:
            if (await self.admin.job(job_id)).state.value != "completed":
                return False
        return True

    # 5 --------------------------------------------------------------------------------------------
    async def rate_limited(self, seconds: float) -> tuple[int, int]:
        await self.fresh()
        await self.client.enqueue_many([JobRequest("noop") for _ in range(int(seconds * 30 * 1.5))])
        await self.admin.pause()
        await self.workers(4, BQ_RATE="30/1s", BQ_KEEP="-1")
        await self.admin.resume()
        await asyncio.sleep(seconds + 1.5)
        self.procs.stop_all()
        starts: list[int] = []
        page = 1
        while True:
            jobs, total = await self.admin.jobs("completed", page=page, page_size=1000)
            starts += [j.started_at or 0 for j in jobs]
            if page * 1000 >= total:
                break
            page += 1
        starts.sort()
        first = starts[0]
        in_window = sum(1 for s in starts if s < first + seconds * 1000)
        worst, j = 0, 0
        for i, s in enumerate(starts):
            while starts[j] <= s - 1000:
                j += 1
            worst = max(worst, i - j + 1)
        return in_window, worst

    # 6 --------------------------------------------------------------------------------------------
    async def crash_recovery(self) -> tuple[float, bool]:
        await self.fresh()
        victim = self.procs.start("bench._queue_worker", BQ_CONC="1")
        await until(lambda: self._workers_at_least(1), "the victim worker up", within=30)
        crash_id = await self.client.enqueue("sleep", {"ms": 60_000})
        await until(lambda: self._state(crash_id, "active"), "the crash job active")
        self.procs.start("bench._queue_worker", BQ_CONC="2")
        await until(lambda: self._workers_at_least(2), "the second worker up", within=30)
        live_id = await self.client.enqueue("sleep", {"ms": 12_000})
        await until(lambda: self._state(live_id, "active"), "the live job active")
        victim.kill()
        killed = time.time() * 1000
        await until(lambda: self._attempts(crash_id, 2), "the crash job re-run", within=30)
        rerun_at = (await self.admin.job(crash_id)).started_at or 0
        await until(lambda: self._state(live_id, "completed"), "the live job completed", within=30)
        live = await self.admin.job(live_id)
        return (rerun_at - killed) / 1000, live.attempts == 1 and not live.errors

    async def _state(self, job_id: str, state: str) -> bool:
        return (await self.admin.job(job_id)).state.value == state

    async def _attempts(self, job_id: str, n: int) -> bool:
        job = await self.admin.job(job_id)
        return job.attempts >= n and job.state.value == "active"

    # 7 --------------------------------------------------------------------------------------------
    async def memory_per_job(self, kind: str, n: int = 10_000) -> float:
        await self.fresh()
        before = int((await self.redis.info("memory"))["used_memory"])
        if kind == "ours":
            await self.client.enqueue_many([JobRequest("noop") for _ in range(n)])
        elif kind == "arq":
            from arq.connections import ArqRedis

            arq = ArqRedis(connection_pool=self.redis.connection_pool)
            for _ in range(n):
                await arq.enqueue_job("noop")
        else:
            from bullmq import Queue

            queue = Queue("anchor", {"connection": self.procs.url})
            for _ in range(0, n, 1000):
                await queue.addBulk([{"name": "noop", "data": {}} for _ in range(1000)])
            await queue.close()
        after = int((await self.redis.info("memory"))["used_memory"])
        return (after - before) / n
