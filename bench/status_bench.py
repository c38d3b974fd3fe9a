"""Status service benchmarks (reads, and ingest → watch), printed beside their targets.

Setup: a throwaway redis-server and the status service as its own process
(``python -m services.status``, the way it is deployed), both on loopback; the clients run in
this process (the throughput clients in processes of their own). For each center size
(200 operators / 20 queues / 100 channels, and 1,000 operators / 50 queues / 300 channels):

- GetSnapshot p50/p99, one client, blocking stub, each answer parsed into a ``Snapshot``, judged
  as a ratio to its anchor: a raw redis-py read of the same rows from the same Redis, timed in
  alternating rounds with it (bench/_redis_anchor.py). The absolute times are information.
- GetSnapshot throughput with 16 concurrent clients, against the service run as one process
  and with ``GRPC_PROCESSES=2`` (one Python process cannot answer 3,000 calls/s, see
  runtime/multiprocess.py; the kernel spreads *connections* over the worker processes).
  The target row drives the service with h2load (bench/_h2load.py, a C HTTP/2 load generator):
  16 connections, one call in flight on each, three 4-s runs after a 2-s warm-up, the median
  rate; the answers are checked byte for byte first. Python clients (asyncio, 8 in each of 2
  client processes, a TCP connection per 2 clients, answers received as bytes) are shown as
  information: they spend about as much CPU per call as the server, so on a 2-core machine
  they take the cores being measured. Beside each rate, the server's CPU time per answer,
  which unlike the rate does not depend on how much of the shared machine the server got.
- The database fallback: a second status process whose Redis is unreachable answers
  GetSnapshot from the database's configuration (written through from the resync batch).
- Ingest → watch: a steady 500 single-change batches/s into Ingest, each stamped with
  ``emitted_at`` when sent; the latency is the time until the change arrives on WatchSnapshot.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import redis
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from bench._h2load import check_answers, start_h2load
from bench._redis_anchor import interleaved_latencies, ratio_row, raw_read
from devsupport.auth import aio_channel, sync_channel
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess, descendants
from devsupport.redis_server import RedisServer
from devsupport.status_batches import batch, center, op_up
from devsupport.status_leases import lease_token
from devsupport.streams import next_message
from devsupport.waiting import wait_until_blocking

SERVICE = "switchboard.status.v1.StatusService"
SNAPSHOT_METHOD = f"/{SERVICE}/GetSnapshot"
SIZES = [(200, 20, 100), (1000, 50, 300)]
TARGET_SIZE = SIZES[0]
"""The issue's targets are for this center; the larger one's figures are printed beside them."""
EVENTS_PER_SECOND = 500
WATCH_SECONDS = 4.0
CLIENT_PROCESSES = 2
"""Throughput clients run in this many processes: one Python process tops out near the target."""
CLIENTS_PER_CONNECTION = 2
"""Several connections per client process, so SO_REUSEPORT can spread them over the workers."""
SERVER_PROCESSES = 2
# A channel of its own TCP connection (grpc otherwise shares one per target inside a process).
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def row(name: str, value: float, unit: str, target: str) -> dict[str, Any]:
    if target == "info":
        return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": True}
    op, limit = target.split()
    met = value <= float(limit) if op == "<=" else value >= float(limit)
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": met}


def start_status(env: dict[str, str], processes: int = 1) -> tuple[ServiceProcess, str]:
    address = f"127.0.0.1:{free_port()}"
    process = ServiceProcess.module(
        "services.status",
        env={
            "STATUS_ADDR": address,
            "LOG_LEVEL": "WARNING",
            "METRICS_PORT": "-1",
            "GRPC_PROCESSES": str(processes),
            **env,
        },
    )
    process.start()
    process.wait_serving(address, SERVICE, timeout=30)
    return process, address


def load_center(address: str, token: int, operators: int, queues: int, channels: int) -> None:
    with sync_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        stub.Clear(status_pb2.ClearRequest(), timeout=10)
        changes = center(operators, queues, channels)
        list(stub.Ingest(iter([batch(*changes, replace_all=True, token=token)]), timeout=30))


def snapshot_latencies(address: str, redis_url: str, seconds: float = 3.0) -> dict[str, list[float]]:
    """GetSnapshot (each answer parsed into a ``Snapshot``) and the raw Redis read of the same
    rows (bench/_redis_anchor.py), timed in alternating rounds, in ms."""
    with sync_channel(address) as channel, redis.Redis.from_url(redis_url) as client:
        call: grpc.UnaryUnaryMultiCallable[bytes, status_pb2.Snapshot] = channel.unary_unary(
            SNAPSHOT_METHOD, response_deserializer=status_pb2.Snapshot.FromString
        )
        request = status_pb2.GetSnapshotRequest().SerializeToString()
        reads = {"GetSnapshot": lambda: call(request, timeout=5), "redis": lambda: raw_read(client)}
        return interleaved_latencies(reads, seconds=2 * seconds)


async def _throughput_clients(address: str, clients: int, start_at: float, seconds: float) -> tuple[int, float]:
    """Run ``clients`` concurrent callers; count the answers between ``start_at`` and + ``seconds``
    (wall clock), and this client process's CPU seconds in that window."""
    channels = [aio_channel(address, options=OWN_CONNECTION) for _ in range(max(1, clients // CLIENTS_PER_CONNECTION))]
    request = status_pb2.GetSnapshotRequest().SerializeToString()
    calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [ch.unary_unary(SNAPSHOT_METHOD) for ch in channels]
    done = 0

    async def client(index: int) -> None:
        nonlocal done
        call = calls[index % len(calls)]
        while time.time() < start_at + seconds:
            await call(request, timeout=5)
            if time.time() >= start_at:
                done += 1

    cpu: list[float] = []

    async def clock_cpu() -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu.append(time.process_time())
        await asyncio.sleep(max(0.0, start_at + seconds - time.time()))
        cpu.append(time.process_time())

    await asyncio.gather(clock_cpu(), *(client(i) for i in range(clients)))  # warms up until start_at
    for ch in channels:
        await ch.close()
    return done, cpu[1] - cpu[0]


def _throughput_process(address: str, clients: int, start_at: float, seconds: float) -> tuple[int, float]:
    return asyncio.run(_throughput_clients(address, clients, start_at, seconds))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Throughput:
    rate: float
    """Answers per second."""
    cpu_per_call_us: float
    """Server CPU (all its processes) per answer."""
    server_cores: float
    client_cores: float
    shares: list[float]
    """Each server process's share of the server CPU, %."""

    def describe(self) -> str:
        split = "/".join(f"{share:.0f}" for share in self.shares)
        workers = f"workers' CPU {split} %, " if len(self.shares) > 1 else ""
        return f"snapshots/s ({workers}cores used: server {self.server_cores:.2f}, clients {self.client_cores:.2f})"


def server_pids(pid: int) -> list[int]:
    """The processes answering RPCs: the workers under a GRPC_PROCESSES supervisor, else ``pid``."""
    return sorted(descendants(pid)) or [pid]


def snapshot_throughput(
    address: str, server_pid: int, clients: int = 16, seconds: float = 3.0, processes: int = CLIENT_PROCESSES
) -> Throughput:
    """Snapshots/s with ``clients`` concurrent callers spread over ``processes`` client processes,
    and where the machine's CPU went. Answers are received as bytes: parsing them would measure
    the clients, not the service."""
    pids = server_pids(server_pid)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        list(pool.map(abs, range(processes)))  # the workers are up before the clock starts
        start_at = time.time() + 1.0  # 1 s of warm-up traffic first
        futures = [
            pool.submit(_throughput_process, address, clients // processes, start_at, seconds) for _ in range(processes)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before = [process_cpu_seconds(pid) for pid in pids]
        time.sleep(seconds)
        cpu_used = [process_cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
        answers = [future.result() for future in futures]
    done = sum(count for count, _ in answers)
    client_cores = sum(cpu for _, cpu in answers) / seconds
    total = sum(cpu_used)
    shares = [used / total * 100 if total else 0.0 for used in cpu_used]
    return Throughput(done / seconds, total / max(done, 1) * 1e6, total / seconds, client_cores, shares)


def snapshot_throughput_h2load(
    address: str, server_pid: int, clients: int = 16, rounds: int = 3, seconds: int = 4
) -> tuple[list[float], float]:
    """Snapshots/s with ``clients`` concurrent callers driven by h2load (a connection each, one
    call in flight on it), in ``rounds`` runs after a warm-up, and the server CPU per answer.
    The answers are checked first: h2load itself cannot tell a gRPC error from a good answer."""
    with sync_channel(address) as channel:
        snapshot: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(SNAPSHOT_METHOD)
        answer = snapshot(b"", timeout=5)
    check_answers(address, SNAPSHOT_METHOD, b"", answer_size=len(answer))
    pids = server_pids(server_pid)
    rates: list[float] = []
    cpu_seconds = 0.0
    answers = 0
    warm_up = 2  # connections open and their HTTP/2 flow-control windows grow
    for _ in range(rounds):
        run = start_h2load(address, SNAPSHOT_METHOD, b"", connections=clients, seconds=seconds, warm_up_seconds=warm_up)
        time.sleep(warm_up + 0.2)
        before = sum(process_cpu_seconds(pid) for pid in pids)
        time.sleep(seconds - 0.4)
        cpu_seconds += sum(process_cpu_seconds(pid) for pid in pids) - before
        result = run.result()
        rates.append(result.rate)
        answers += round(result.rate * (seconds - 0.4))
    return rates, cpu_seconds / max(answers, 1) * 1e6


async def watch_latency(address: str, token: int, operators: int) -> list[float]:
    async with aio_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        watch = stub.WatchSnapshot(status_pb2.WatchSnapshotRequest())
        first = await next_message(watch)
        assert first.WhichOneof("event") == "snapshot"
        total = int(EVENTS_PER_SECOND * WATCH_SECONDS)
        latencies: list[float] = []

        async def receive() -> None:
            while len(latencies) < total:
                message = await next_message(watch)
                if message.WhichOneof("event") == "changes":
                    latencies.append((time.time() - message.changes.emitted_at) * 1000)

        async def batches() -> Any:
            started = time.perf_counter()
            for i in range(total):
                delay = started + i / EVENTS_PER_SECOND - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                change = op_up(f"queue-{i % 20:02d}", f"PJSIP/{1000 + i % operators}", calls_taken=i)
                yield batch(change, sequence=i + 1, token=token)  # emitted_at = now

        receiver = asyncio.create_task(receive())
        async for _ack in stub.Ingest(batches()):
            pass
        async with asyncio.timeout(10):
            await receiver
        watch.cancel()
    return latencies


def database_fallback_latency(address: str, seconds: float = 2.0) -> tuple[list[float], int]:
    with sync_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        first = stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)
        assert first.source == status_pb2.SOURCE_DATABASE, first.source
        samples: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)
            samples.append((time.perf_counter() - started) * 1000)
    return samples, len(first.operators)


def wait_for_database(address: str, members: int, timeout: float = 10.0) -> None:
    with sync_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)

        def in_database() -> bool:
            return bool(stub.GetSyncStatus(status_pb2.GetSyncStatusRequest(), timeout=5).db_members == members)

        wait_until_blocking(in_database, within=timeout, what="the resync reached the database")


def wait_replicas_loaded(address: str, operators: int, connections: int = 8, timeout: float = 10.0) -> None:
    """Every worker of a GRPC_PROCESSES unit followed the load (checked over fresh connections)."""
    deadline = time.monotonic() + timeout
    for _ in range(connections):
        with sync_channel(address, options=OWN_CONNECTION) as channel:
            stub = status_pb2_grpc.StatusServiceStub(channel)
            while len(stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5).operators) != operators:
                if time.monotonic() > deadline:
                    raise TimeoutError("a status worker never caught up with the load")
                time.sleep(0.05)


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
    pad = "" if targeted else "  "  # the other size's figures are information: indented

    def goal(target: str) -> str:
        return target if targeted else "info"

    token = lease_token(env["REDIS_URL"])  # the ingest this benchmark plays holds the lease
    load_center(address, token, operators, queues, channels)
    wait_for_database(address, operators)
    reads = snapshot_latencies(address, env["REDIS_URL"])
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        ours, anchor = (percentile(reads[read], fraction) for read in ("GetSnapshot", "redis"))
        yield row(f"  status GetSnapshot {name}, 1 client ({label})", ours, "ms", "info")
        yield row(f"  anchor: raw redis-py read of the same rows {name} ({label})", anchor, "ms", "info")
        ratio = ratio_row(f"{pad}status GetSnapshot {name} / raw Redis read {name} ({label})", ours, anchor, "Redis")
        yield ratio if targeted else {**ratio, "target": "info", "met": True}
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
    latencies = asyncio.run(watch_latency(address, token, operators))
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
