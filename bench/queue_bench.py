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

from bench._queue_support import PRIORITY_BACKLOG_MIN, Bench, Procs, result
from devsupport.ports import free_port

FigureRunner = Callable[[Bench], Awaitable[list[dict[str, Any]]]]


THROUGHPUT_ROUNDS = 3
"""1- and 2-process runs alternate this many times; the medians are compared. One run each swings
by a third on a shared 2-core machine (the workers, Redis and this process share the cores)."""


async def fig_throughput(b: Bench) -> list[dict[str, Any]]:
    ones: list[float] = []
    twos: list[float] = []
    for _ in range(THROUGHPUT_ROUNDS):
        ones.append(await b.throughput(1, 30_000))
        twos.append(await b.throughput(2, 30_000))
    one, two = statistics.median(ones), statistics.median(twos)
    arq = await b.arq_throughput(2_000)
    bull = await b.bullmq_throughput(5_000)
    return [
        result("queue no-op throughput, 1 worker process, c=50", one, _medians_unit(ones), ">= 3000", one >= 3000),
        result("queue throughput vs BullMQ-Python (same run)", one / bull, "x", ">= 1.5", one / bull >= 1.5),
        result("queue throughput vs bare arq defaults (same run)", one / arq, "x", ">= 5", one / arq >= 5),
        result("anchor: BullMQ-Python no-op throughput, c=50", bull, "jobs/s", "anchor", True),
        result("anchor: bare arq no-op throughput, c=50", arq, "jobs/s", "anchor", True),
        result("  queue no-op throughput, 2 worker processes", two, _medians_unit(twos), "info", True),
        result("queue 2-process scaling (medians)", two / one, "x", ">= 1.6", two >= 1.6 * one),
    ]


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
    out = []
    for kind in ("ours", "arq", "bullmq"):
        mem = await b.memory_per_job(kind)
        if kind == "ours":
            out.append(result("redis memory per waiting job", mem, "bytes", "<= 600", mem <= 600))
        else:
            out.append(result(f"anchor: {kind} redis memory per waiting job", mem, "bytes", "anchor", True))
    return out


async def fig_rate(b: Bench) -> list[dict[str, Any]]:
    done, worst = await b.rate_limited(60)
    return [
        result("rate limit 30/s, 4 workers, 60 s: completed", done, "jobs", "1800 ± 1%", 1782 <= done <= 1818),
        result("rate limit 30/s: most starts in any 1-s window", worst, "jobs", "<= 30", worst <= 30),
    ]


FIGURES: dict[str, FigureRunner] = {
    "throughput": fig_throughput,  # 1, with the bare-arq and BullMQ-Python anchors
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
