"""Status service benchmarks (reads, and ingest → watch), printed beside their targets.

Setup: a throwaway redis-server and the status service as its own process
(``python -m services.status``, the way it is deployed, authentication on), both on loopback;
the clients run in this process (the throughput clients in processes of their own). For each
center size (:data:`SIZES`: 200 operators / 20 queues / 100 channels, which the targets are for;
1,000 / 50 / 300; and 2,000 / 100 / 600, the largest single-Asterisk centers):

- GetSnapshot p50/p99, one client, judged as a ratio to its anchor: a raw redis-py read of the
  same rows from the same Redis, timed in alternating rounds with it (bench/_redis_anchor.py).
  Both clients are as plain as their libraries allow (bench/_status_latency.py says how), so
  the ratio compares the servers. Timed in the same rounds, for information: the floor, a bare
  grpc.aio server answering the same bytes with nothing of ours around them
  (bench/_grpc_floor.py), the same answer behind our server stack (``--layers``: call cap,
  span, logs and metrics, authentication), the bare server answering nothing (what one gRPC
  call costs this client and server whatever its size: at 200 operators alone it is slower
  than the raw read of every row), and the CPU time per call of each client and each server,
  which a busy machine hardly moves.
- GetSnapshot throughput with 16 concurrent clients, against the service run as one process
  and with ``GRPC_PROCESSES=2`` (bench/_status_throughput.py). The target row drives the
  service with h2load, a C HTTP/2 load generator; Python clients are information.
- The database fallback: a second status process whose Redis is unreachable answers
  GetSnapshot from the database's configuration (written through from the resync batch).
- Ingest → watch: a steady 500 single-change batches/s into Ingest, each stamped with
  ``emitted_at`` when sent; the latency is the time until the change arrives on WatchSnapshot.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._redis_anchor import Timing, ratio_row
from bench._status_latency import database_fallback_latency, snapshot_reads, watch_latency
from bench._status_service import load_center, start_status, wait_for_database, wait_replicas_loaded
from bench._status_throughput import snapshot_throughput, snapshot_throughput_h2load
from devsupport.ports import free_port
from devsupport.redis_server import RedisServer
from devsupport.status_leases import lease_token

SIZES = [(200, 20, 100), (1000, 50, 300), (2000, 100, 600)]
"""Operators, queues, channels of each center measured."""
TARGET_SIZE = SIZES[0]
"""The issue's targets are for this center; the larger ones' figures are printed beside them."""
SERVER_PROCESSES = 2


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def row(name: str, value: float, unit: str, target: str) -> dict[str, Any]:
    if target == "info":
        return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": True}
    op, limit = target.split()
    met = value <= float(limit) if op == "<=" else value >= float(limit)
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": met}


def read_rows(reads: dict[str, Timing], label: str, targeted: bool) -> Iterator[dict[str, Any]]:
    """GetSnapshot beside the raw Redis read (judged at the target size), the bare gRPC floor and
    the same answer behind our server stack (the layers, auth on)."""
    pad = "" if targeted else "  "
    ours, anchor, floor, stack, empty = (reads[name] for name in ("GetSnapshot", "redis", "floor", "stack", "empty"))
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        mine, redis_read, bare, layered, nothing = (
            percentile(timing.latencies, fraction) for timing in (ours, anchor, floor, stack, empty)
        )
        yield row(f"  status GetSnapshot {name}, 1 client ({label})", mine, "ms", "info")
        yield row(f"  anchor: raw redis-py read of the same rows {name} ({label})", redis_read, "ms", "info")
        yield row(f"  floor: bare grpc.aio server, same answer bytes, {name} ({label})", bare, "ms", "info")
        yield row(f"  floor behind our server stack, same answer bytes, {name} ({label})", layered, "ms", "info")
        yield row(f"  floor: bare grpc.aio server, empty answer, {name} ({label})", nothing, "ms", "info")
        judged = f"{pad}status GetSnapshot {name} / raw Redis read {name} ({label})"
        ratio = ratio_row(judged, mine, redis_read, "Redis")
        yield ratio if targeted else {**ratio, "target": "info", "met": True}
        for what, value in (
            ("floor", bare),
            ("floor behind our server stack", layered),
            ("floor with an empty answer", nothing),
        ):
            floor_ratio = ratio_row(f"  {what} {name} / raw Redis read {name} ({label})", value, redis_read, "Redis")
            yield {**floor_ratio, "target": "info", "met": True}
    for what, timing in (
        ("GetSnapshot", ours),
        ("raw Redis read", anchor),
        ("bare gRPC floor", floor),
        ("floor behind our server stack", stack),
        ("bare gRPC floor, empty answer", empty),
    ):
        yield row(
            f"  CPU per call, {what} ({label})",
            timing.server_cpu_us() + timing.client_cpu_us(),
            f"µs (server {timing.server_cpu_us():.0f} + client {timing.client_cpu_us():.0f})",
            "info",
        )


def measure_size(
    address: str,
    server_pid: int,
    env: dict[str, str],
    fallback_env: dict[str, str],
    size: tuple[int, int, int],
) -> Iterator[dict[str, Any]]:
    operators, queues, channels = size
    label = f"{operators} ops/{queues} queues/{channels} channels"
    targeted = size == TARGET_SIZE
    pad = "" if targeted else "  "  # the other sizes' figures are information: indented

    def goal(target: str) -> str:
        return target if targeted else "info"

    token = lease_token(env["REDIS_URL"])  # the ingest this benchmark plays holds the lease
    load_center(address, token, operators, queues, channels)
    wait_for_database(address, operators)
    yield from read_rows(snapshot_reads(address, server_pid, env["REDIS_URL"], operators), label, targeted)
    single = snapshot_throughput(address, server_pid)
    name = f"  status GetSnapshot throughput, 16 clients, 1 process ({label})"
    yield row(name, single.rate, single.describe(), "info")
    name = f"  status GetSnapshot server CPU per call, 16 clients, 1 process ({label})"
    yield row(name, single.cpu_per_call_us, "µs", "info")
    # Started only for this measurement: its followers would otherwise share the CPU the
    # ingest→watch figures below are about.
    multi, multi_address = start_status(env, processes=SERVER_PROCESSES)
    try:
        wait_replicas_loaded(multi_address, operators)
        multi_result = snapshot_throughput(multi_address, multi.pid)
        h2load_rates, h2load_cpu_us = snapshot_throughput_h2load(multi_address, multi.pid)
    finally:
        multi.close()
    yield row(
        f"  status GetSnapshot throughput, 16 Python clients, GRPC_PROCESSES={SERVER_PROCESSES} ({label})",
        multi_result.rate,
        multi_result.describe(),
        "info",
    )
    yield row(
        f"  status GetSnapshot server CPU per call, GRPC_PROCESSES={SERVER_PROCESSES} ({label})",
        multi_result.cpu_per_call_us,
        "µs",
        "info",
    )
    runs = ", ".join(f"{rate:,.0f}" for rate in h2load_rates)
    yield row(
        f"{pad}status GetSnapshot throughput, 16 clients (h2load), GRPC_PROCESSES={SERVER_PROCESSES} ({label})",
        statistics.median(h2load_rates),
        f"snapshots/s (median of {runs}; server CPU {h2load_cpu_us:.0f} µs/call)",
        goal(">= 3000"),
    )
    fallback, fallback_address = start_status(fallback_env)
    try:
        db_samples, rows = database_fallback_latency(fallback_address)
        assert rows == operators, (rows, operators)
    finally:
        fallback.close()
    yield row(f"{pad}status DB fallback GetSnapshot p99 ({label})", percentile(db_samples, 0.99), "ms", goal("<= 50"))
    latencies = asyncio.run(watch_latency(address, token, operators, queues))
    yield row(f"{pad}status ingest→watch p50 at 500/s ({label})", statistics.median(latencies), "ms", goal("<= 2"))
    yield row(f"{pad}status ingest→watch p99 at 500/s ({label})", percentile(latencies, 0.99), "ms", goal("<= 10"))


def run() -> list[dict[str, Any]]:
    # Other work on the machine shows in every figure: say how busy it was when we began.
    load = os.getloadavg()[0]
    results = [row("  host load average (1 min) at the start", load, f"on {os.cpu_count()} cores", "info")]
    with tempfile.TemporaryDirectory(prefix="sb-status-bench-") as data, RedisServer() as redis_server:
        database_url = f"sqlite+aiosqlite:///{Path(data) / 'status.db'}"
        env = {"REDIS_URL": redis_server.url, "DATABASE_URL": database_url, "DATA_DIR": data}
        fallback_env = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there
        process, address = start_status(env)
        try:
            for size in SIZES:
                results.extend(measure_size(address, process.pid, env, fallback_env, size))
        finally:
            process.close()
    return results


if __name__ == "__main__":
    for result in run():
        mark = "ok  " if result["met"] else "MISS"
        print(f"{mark} {result['name']:<75} {result['value']:>10} {result['unit']:<12} target {result['target']}")
