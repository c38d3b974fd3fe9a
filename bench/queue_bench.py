"""Queue-layer benchmarks (figures 1–7) with bare arq and BullMQ-Python anchors measured
in the same run on a redis-server started here.  ``python -m bench.queue_bench`` prints them."""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis

from bench._queue_cpu import CPU_TARGET_US, RunCpu, script_costs
from bench._queue_support import PRIORITY_BACKLOG_MIN, Bench, Procs, result
from devsupport.ports import free_port

FigureRunner = Callable[[Bench], Awaitable[list[dict[str, Any]]]]


THROUGHPUT_ROUNDS = 3
"""1- and 2-process runs alternate this many times; the medians are compared. One run each swings
by a third on a shared 2-core machine (the workers, Redis and this process share the cores)."""
PROJECTED_CORES = (1, 2, 3, 4, 6)
"""Worker cores of the scaling projection (Redis on a core of its own)."""
SCRIPT_JOBS = 20_000


async def fig_throughput(b: Bench) -> list[dict[str, Any]]:
    ones: list[float] = []
    twos: list[float] = []
    cpus: list[RunCpu] = []
    for _ in range(THROUGHPUT_ROUNDS):
        one, cpu = await b.throughput(1, 30_000)
        ones.append(one)
        cpus.append(cpu)
        twos.append((await b.throughput(2, 30_000))[0])
    one, two = statistics.median(ones), statistics.median(twos)
    arq = await b.arq_throughput(2_000)
    bull = await b.bullmq_throughput(5_000)
    return [
        result("queue no-op throughput, 1 worker process, c=50", one, _medians_unit(ones), ">= 3000", one >= 3000),
        result("queue throughput vs BullMQ-Python (same run)", one / bull, "x", ">= 1.5", one / bull >= 1.5),
        result("queue throughput vs bare arq defaults (same run)", one / arq, "x", ">= 5", one / arq >= 5),
        result("anchor: BullMQ-Python no-op throughput, c=50", bull, "jobs/s", "anchor", True),
        result("anchor: bare arq no-op throughput, c=50", arq, "jobs/s", "anchor", True),
        result("  queue no-op throughput, 2 worker processes (2 cores shared with Redis)", two,
               _medians_unit(twos), "info", True),
        result("  queue 2-process / 1-process (medians; bounded by the 2 shared cores)", two / one, "x", "info", True),
        *_projection_rows(cpus),
    ]  # fmt: skip


def _projection_rows(cpus: list[RunCpu]) -> list[dict[str, Any]]:
    """Redis and worker CPU per job in the 1-process runs, and what they allow with Redis on a core
    of its own: n worker processes on n cores reach min(n / worker CPU, 1 / Redis CPU) jobs/s."""
    redis_us = statistics.median(c.redis_us for c in cpus)
    scripts_us = statistics.median(c.scripts_us for c in cpus)
    worker_us = statistics.median(c.worker_us for c in cpus)
    linear_up_to = worker_us / redis_us
    runs = f"median of {len(cpus)} 1-process runs"
    rows = [
        result(f"  real run: Redis process CPU per job (user+sys, {runs})", redis_us, "µs", "info", True),
        result(f"  real run: of which in the Lua scripts (commandstats, {runs})", scripts_us, "µs", "info", True),
        result(f"  real run: worker process CPU per job ({runs})", worker_us, "µs", "info", True),
        result("  projection: worker processes that scale linearly, Redis on its own core", linear_up_to,
               f"worker cores (= worker CPU / Redis CPU per job, {worker_us:.1f} / {redis_us:.1f} µs)", "info", True),
    ]  # fmt: skip
    for cores in PROJECTED_CORES:
        rate = min(cores / worker_us, 1 / redis_us) * 1e6
        bound = "linear" if cores <= linear_up_to else "Redis-bound"
        rows.append(
            result(f"  projection: {cores} worker process(es) on {cores} core(s) + Redis on its own", rate,
                   f"jobs/s ({bound})", "info", True)
        )  # fmt: skip
    return rows


async def fig_cpu(b: Bench) -> list[dict[str, Any]]:
    """Redis CPU per job in each hot-path script (commandstats), every feature of the bench queue on."""
    await b.fresh()
    costs = await script_costs(b.redis, b.spec, SCRIPT_JOBS)
    rows = [
        result(f"  Redis CPU per job in {c.script}", c.per_job,
               f"µs ({c.per_call:.0f} µs a call; redis-server process CPU {c.process_per_job:.1f} µs a job)",
               "info", True)
        for c in costs
    ]  # fmt: skip
    bulk, claim, complete, single = costs
    worker_side = claim.per_job + complete.per_job
    worker_process = claim.process_per_job + complete.process_per_job
    rows += [
        result("queue Redis CPU per job in the worker's scripts: claim + complete (commandstats)", worker_side,
               f"µs (redis-server process CPU {worker_process:.1f} µs)", f"<= {CPU_TARGET_US:g}",
               worker_side <= CPU_TARGET_US),
        result("  queue Redis CPU per job, whole life: enqueue_many + claim + complete (commandstats)",
               bulk.per_job + worker_side, f"µs (process CPU {bulk.process_per_job + worker_process:.1f} µs)",
               "info", True),
        result("  same with the job enqueued alone (one call per job)", single.per_job + worker_side,
               f"µs (process CPU {single.process_per_job + worker_process:.1f} µs)", "info", True),
    ]  # fmt: skip
    return rows


def _medians_unit(rates: list[float]) -> str:
    return f"jobs/s (median of {', '.join(f'{rate:,.0f}' for rate in rates)}; runs alternated)"


async def fig_enqueue(b: Bench) -> list[dict[str, Any]]:
    seq, conc, bulk = await b.enqueue_rates(5_000)
    return [
        result("enqueue one at a time, 16 concurrent callers", conc, "jobs/s", ">= 5000", conc >= 5000),
        result("enqueue one at a time, strictly sequential awaits", seq, "jobs/s", "info", True),
        result("bulk enqueue", bulk, "jobs/s", ">= 20000", bulk >= 20000),
    ]


async def fig_latency(b: Bench) -> list[dict[str, Any]]:
    lat = await b.probe_latencies(500, 1500)
    p50, p99 = statistics.median(lat), statistics.quantiles(lat, n=100)[98]
    return [
        result("pickup latency p50 at 500 jobs/s", p50, "ms", "<= 2", p50 <= 2),
        result("pickup latency p99 at 500 jobs/s", p99, "ms", "<= 10", p99 <= 10),
    ]


async def fig_priority(b: Bench) -> list[dict[str, Any]]:
    lat, fewest_waiting = await b.priority_latencies(PRIORITY_BACKLOG_MIN, probes=200, rate=50)
    p50, p99 = statistics.median(lat), statistics.quantiles(lat, n=100)[98]
    held = fewest_waiting >= PRIORITY_BACKLOG_MIN
    return [
        result(
            "priority-10 start p99, >= 10k no-op jobs waiting, worker saturated",
            p99,
            "ms",
            "<= 20",
            p99 <= 20 and held,
        ),
        result("priority-10 start p50, same run", p50, "ms", "info", True),
        result(
            "priority: fewest low-priority jobs waiting at a probe",
            fewest_waiting,
            "jobs",
            f">= {PRIORITY_BACKLOG_MIN}",
            held,
        ),
    ]


async def fig_crash(b: Bench) -> list[dict[str, Any]]:
    recovery, once = await b.crash_recovery()
    return [
        result("crash recovery: re-run after SIGKILL", recovery, "s", "<= 10", recovery <= 10),
        result("crash recovery: live 12 s job run exactly once (lease 5 s)", float(once), "bool", "== 1", once),
    ]


async def fig_memory(b: Bench) -> list[dict[str, Any]]:
    ours, arq, bull = [await b.memory_per_job(kind) for kind in ("ours", "arq", "bullmq")]
    return [
        result("  redis memory per waiting job", ours, "bytes", "info", True),
        result("anchor: BullMQ redis memory per waiting job", bull, "bytes", "anchor", True),
        result("anchor: arq redis memory per waiting job", arq, "bytes", "anchor", True),
        result("redis memory per waiting job / BullMQ's (same run)", ours / bull,
               f"x ({ours:.1f} vs {bull:.1f} B)", "<= 1", ours <= bull),
    ]  # fmt: skip


async def fig_rate(b: Bench) -> list[dict[str, Any]]:
    done, worst = await b.rate_limited(60)
    return [
        result("rate limit 30/s, 4 workers, 60 s: completed", done, "jobs", "1800 ± 1%", 1782 <= done <= 1818),
        result("rate limit 30/s: most starts in any 1-s window", worst, "jobs", "<= 30", worst <= 30),
    ]


FIGURES: dict[str, FigureRunner] = {
    "throughput": fig_throughput,  # 1, with the bare-arq and BullMQ-Python anchors, CPU projection
    "cpu": fig_cpu,  # Redis CPU per job in each script
    "enqueue": fig_enqueue,  # 2
    "latency": fig_latency,  # 3
    "priority": fig_priority,  # 4
    "rate": fig_rate,  # 5
    "crash": fig_crash,  # 6
    "memory": fig_memory,  # 7
}


async def _run_all(url: str, figures: Sequence[str]) -> list[dict[str, Any]]:
    redis = Redis.from_url(url)
    procs = Procs(url)
    b = Bench(redis, procs)
    out: list[dict[str, Any]] = []
    try:
        for figure in figures:
            out += await FIGURES[figure](b)
    finally:
        procs.stop_all()
        await b.client.close()
        await redis.aclose()
    return out


def run(figures: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run ``figures`` (names from :data:`FIGURES`; all of them by default) on a fresh redis-server."""
    chosen = list(figures or FIGURES)
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; have {list(FIGURES)}")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="queue-bench-")
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        return asyncio.run(_run_all(url, chosen))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    # python -m bench.queue_bench [figure ...]   e.g. ``priority throughput``
    for row in run(sys.argv[1:] or None):
        print(f"{row['name']:<60} {row['value']:>10} {row['unit']:<7} target {row['target']:<10} met={row['met']}")
