"""Dashboard SSE fan-out: AMI event → SSE frame at 1 and at 500 clients of the gateway's
``/api/queue-status/stream``, while :data:`RATE` events/s flow; the gateway's RSS beside each.

The whole real path, each piece its own process: a redis-server, the status service, ami_ingest
reading a paced AMI server (``bench/_live_status_ami.py``: ``QueueMemberPause`` events, each with a
unique ``PausedReason``, stamped with ``time.time()`` as they are written), and the gateway
(``python -m gateway``). The SSE clients are raw asyncio connections (``bench/_sse_clients.py``:
one ``GET``, then bytes read as they come), opened in order: every :data:`PROBE_EVERY`-th one (by
connection order, so spread over the gateway's fan-out order) is a probe, held by this process,
which reads as data comes and stamps (``time.time()``) the arrival of each reason in its frames;
the others, the bulk, are held by a process of their own (``python -m bench._sse_clients``, one
event loop) and read every :data:`~bench._sse_clients.DRAIN_EVERY_S` (the gateway writes to them
as to the probes; their kernel buffers hold what they have not read yet). Every client reads
everything it is sent. (The bulk clients used to be read on this process's event loop too: each
drain of 480 sockets then held the probes' stamps back; from the end of the gateway's round of
writes to a probe's stamp took 5.8 to 7.9 ms at p99 with 500 clients, about 1 ms since.) An event
counts as shown when its own frame, or the first later event's frame (the ingest and the status
service coalesce a row's changes), reached the client: the rule of ``bench/live_status_bench.py``.
The first :data:`WARMUP_S` seconds are warm-up.

Targets: every probe client is shown at least :data:`DELIVERED_TARGET` % of the events after the
warm-up (an event never shown has no latency, so a stream that stops would otherwise look fast), no
client's stream is ended early by the gateway (one cut off would leave it fewer writes to make), and
the p99 at 500 clients is at most :data:`P99_RATIO_TARGET` times the p99 at 1 client of the same run
(each the median of :data:`WINDOWS` windows' p99).
Information: the absolute times, the gateway's RSS and CPU, the load average, and as a reference
the same events on a WatchSnapshot this process holds straight on the status service. Also, in
this process alone (``bench/_sse_pace.py``): how long the fan-out's shared watch takes to read
149 change sets while 100 clients' writes cost 0.3 ms each, with and without one 30 ms stall of
the loop (well under 1.5 s on a quiet machine; per-message wakes took about 4.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from switchboard.status.v1 import status_pb2, status_pb2_grpc

from bench._live_status_procs import ingest_process, module_process, status_process, wait_live
from bench._procfs import status_kib
from bench._queue_cpu import process_cpu_s
from bench._sse_clients import SseClient, close, request, wait_snapshots
from bench._sse_pace import run_paced_fanout
from bench.live_status_bench import percentile, visible_latencies
from devsupport.auth import aio_channel
from devsupport.ports import free_port
from devsupport.procs import REPO_ROOT, ServiceProcess, child_env
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until_blocking
from runtime.event_loop import event_loop_factory

RATE = 500
"""AMI events/s."""
CLIENTS = tuple(int(n) for n in os.environ.get("SSE_BENCH_CLIENTS", "1,500").split(","))
PROBE_EVERY = 25
WARMUP_S = 2.0
MEASURE_S = 10.0
P99_RATIO_TARGET = 5.0
WINDOWS = 3
"""Windows measured at each client count; the ratio is of their median p99s. One window's p99 at
1 client rests on its 50 slowest of 5,000 events, so one stall anywhere on the path (status,
ingest, Redis: the reference watch shows it too) could make it 31 ms instead of ~3 and the ratio
look met; at 500 clients one such stall (seen here: a window at 109 ms between two at 53 and 55)
made it look missed."""
DELIVERED_TARGET = 99.0
"""% of the events (after the warm-up) every probe client must be shown for its latency to count."""
CONNECT_BATCH = 50
"""Clients connecting at once (then waiting for their snapshots) while the 500 join."""
REASON = re.compile(rb'"pausedReason":"(r\d{6})"')


class BulkClients:
    """The bulk clients' process (``python -m bench._sse_clients``), driven over its stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.count = 0

    @classmethod
    async def start(cls, port: int) -> BulkClients:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench._sse_clients", str(port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=child_env(), cwd=REPO_ROOT,
        )  # fmt: skip
        return cls(process)

    async def command(self, line: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        answer = (await self.process.stdout.readline()).decode().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"bulk clients, {line!r}: {answer or 'the process ended'}")
        return answer

    async def connect(self, count: int) -> None:
        await self.command(f"connect {count}")
        self.count += count

    async def close(self) -> int:
        """Close every bulk client; how many of them the gateway cut off."""
        cut_off = int((await self.command("close")).split()[1])
        await self.process.wait()
        return cut_off

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


async def _connect(port: int, count: int, bulk: BulkClients) -> list[SseClient]:
    """Open ``count`` clients in :data:`CONNECT_BATCH` batches, in order: every
    :data:`PROBE_EVERY`-th one a probe of this process, the rest by ``bulk``. Returns the probes."""
    loop = asyncio.get_running_loop()
    message = request(port)
    probes: list[SseClient] = []
    for start in range(0, count, CONNECT_BATCH):
        batch: list[SseClient] = []
        run = 0  # bulk clients due before the next probe
        for i in range(start, min(start + CONNECT_BATCH, count)):
            if i % PROBE_EVERY:
                run += 1
                continue
            if run:
                await bulk.connect(run)
                run = 0
            probe = SseClient(message, stamp=REASON.findall)
            await loop.create_connection(lambda c=probe: c, "127.0.0.1", port)  # type: ignore[misc]
            batch.append(probe)
        if run:
            await bulk.connect(run)
        await asyncio.gather(
            wait_snapshots(batch, f"the probes of clients {start}..{start + CONNECT_BATCH - 1}"),
            bulk.command("snapshots"),
        )
        probes += batch
    return probes


async def _direct_watch(status_addr: str, arrivals: dict[str, float]) -> None:
    """Stamp each reason's arrival on a WatchSnapshot of this process (every queue, as the SSE)."""
    async with aio_channel(status_addr) as channel:
        call = status_pb2_grpc.StatusServiceStub(channel).WatchSnapshot(status_pb2.WatchSnapshotRequest())
        try:
            async for response in call:
                stamp = time.time()
                for change in response.changes.changes:
                    reason = change.operator_upserted.paused_reason
                    if reason.startswith("r"):
                        arrivals.setdefault(reason, stamp)
        finally:
            call.cancel()


async def _watch(
    port: int, count: int, feed: Callable[[], Any], pid: int, status_addr: str
) -> tuple[list[SseClient], float, float, dict[str, float], int]:
    """Connect ``count`` clients, run ``feed`` (blocking: the AMI run) in a thread, then close them.
    Returns the probe clients, the gateway's largest RSS seen meanwhile (MiB), its CPU use (cores),
    the reasons' arrivals on a WatchSnapshot of this process's own, straight from the status service,
    and how many clients the gateway cut off (their stream ended early: fewer writes to make)."""
    bulk = await BulkClients.start(port)
    try:
        probes = await _connect(port, count, bulk)
        assert len(probes) + bulk.count == count
        for probe in probes:  # a snapshot may name reasons of an earlier run: its events were not sent in this one
            probe.arrivals.clear()
        await bulk.command("drain")
        grpc_arrivals: dict[str, float] = {}
        direct = asyncio.create_task(_direct_watch(status_addr, grpc_arrivals))
        peak = rss_mib(pid)
        cpu_before, started = process_cpu_s(pid), time.monotonic()
        run = asyncio.get_running_loop().run_in_executor(None, feed)
        while not run.done():
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.5)
        await run
        cores = (process_cpu_s(pid) - cpu_before) / (time.monotonic() - started)
        direct.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await direct
        await close(probes)
        bulk_cut_off = await bulk.close()
    finally:
        bulk.kill()
    return probes, peak, cores, grpc_arrivals, bulk_cut_off + sum(probe.cut_off for probe in probes)


def _feed(redis_url: str, status_addr: str, workdir: Path, label: str, sent: dict[str, float]) -> Callable[[], None]:
    """One paced AMI run (its own feeder and ingest) that fills ``sent`` with the send stamps."""

    def run() -> None:
        port = free_port()
        out = workdir / f"sent-{label}.json"
        args = ["--port", str(port), "--rate", str(RATE), "--seconds", str(WARMUP_S + MEASURE_S), "--delay", "1.0"]
        with (
            module_process("bench._live_status_ami", *args, "--out", str(out), ready_text="ready"),
            ingest_process(redis_url, status_addr, port, "bench", "bench-secret") as ingest,
        ):
            wait_live(ingest)
            wait_until_blocking(out.exists, within=WARMUP_S + MEASURE_S + 30, what="the AMI feeder's stamps")
        sent.update(json.loads(out.read_text()))

    return run


def _latencies(probes: list[SseClient], sent: dict[str, float]) -> list[float]:
    latencies: list[float] = []
    first_sent = min(sent.values())
    for client in probes:
        # A reason seen before this run's first event is an earlier run's (in a resync's rows).
        arrivals = {reason: at for reason, at in client.arrivals.items() if at >= first_sent}
        latencies += visible_latencies(sent, arrivals, RATE)[0]
    return latencies


PACE_CLIENTS, PACE_LAST, PACE_WRITE_COST_S, PACE_STALL_S = 100, 150, 0.0003, 0.03


def paced_fanout_rows(load: float) -> list[dict[str, Any]]:
    """The in-process pace rows (the scenario of tests/gateway/test_status_fanout.py)."""
    rows = []
    for label, stall_s in (("", 0.0), (f", one {PACE_STALL_S * 1000:.0f} ms stall", PACE_STALL_S)):
        with asyncio.Runner() as runner:
            run = runner.run(run_paced_fanout(PACE_CLIENTS, PACE_LAST, PACE_WRITE_COST_S, stall_at=5, stall_s=stall_s))
        rows.append(
            _info(
                f"gateway SSE fan-out in process: shared watch reads {PACE_LAST - 1} change sets, {PACE_CLIENTS}"
                f" clients writing {PACE_WRITE_COST_S * 1000:g} ms each{label} (load {load:.1f})",
                run.read_all_s * 1000,
                f"ms (at most {max(run.writes)} writes per client)",
            )
        )
    return rows


def run() -> list[dict[str, Any]]:
    load = os.getloadavg()[0]
    rows: list[dict[str, Any]] = paced_fanout_rows(load)
    p99s: dict[int, list[float]] = {}
    delivered_ok: dict[int, bool] = {}
    with tempfile.TemporaryDirectory(prefix="sb-sse-bench-") as tmp, RedisServer() as redis:
        workdir = Path(tmp)
        port = free_port()
        with status_process(redis.url, workdir) as status_addr:
            env = {
                "STATUS_ADDR": status_addr,
                "GATEWAY_PORT": str(port),
                "LOG_LEVEL": "WARNING",
                "METRICS_PORT": "-1",
                "DATA_DIR": str(workdir),
                "GATEWAY_MAX_STREAMS_PER_CLIENT": "0",
                "GATEWAY_MAX_CONNECTIONS_PER_CLIENT": "0",
            }
            with ServiceProcess.module("gateway", env=env) as gateway:
                gateway.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
                idle_rss = rss_mib(gateway.pid)
                for count in (n for n in CLIENTS for _ in range(WINDOWS)):
                    holder: dict[str, float] = {}
                    feed = _feed(redis.url, status_addr, workdir, f"{count}-{len(p99s.get(count, []))}", holder)
                    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                        probe_clients, peak, cores, direct, cut_off = runner.run(
                            _watch(port, count, feed, gateway.pid, status_addr)
                        )
                    latencies = _latencies(probe_clients, holder)
                    first_sent = min(holder.values())
                    direct_arrivals = {r: at for r, at in direct.items() if at >= first_sent}
                    reference = visible_latencies(holder, direct_arrivals, RATE)[0]
                    probes = len(probe_clients)
                    expected = probes * sum(1 for reason in holder if int(reason[1:]) >= RATE * WARMUP_S)
                    shown = len(latencies)
                    delivered = shown / max(expected, 1) * 100
                    # No frame at all after the warm-up: the figure is the run's length, not a latency.
                    latencies = latencies or [(WARMUP_S + MEASURE_S) * 1000]
                    reference = reference or [(WARMUP_S + MEASURE_S) * 1000]
                    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
                    p99s.setdefault(count, []).append(p99)
                    delivered_ok[count] = (
                        delivered_ok.get(count, True) and delivered >= DELIVERED_TARGET and cut_off == 0
                    )
                    window = f", window {len(p99s[count])}" if WINDOWS > 1 else ""
                    at = f"{count} client(s){window}, {RATE} events/s, load {load:.1f}"
                    rows += [
                        {"name": f"gateway SSE: events shown on every probe client after the warm-up ({at})",
                         "value": round(delivered, 2), "unit": f"% ({shown} of {expected})",
                         "target": f">= {DELIVERED_TARGET:g}", "met": delivered >= DELIVERED_TARGET},
                        {"name": f"gateway SSE: clients whose stream the gateway ended early ({at})",
                         "value": cut_off, "unit": f"of {count}", "target": "0", "met": cut_off == 0},
                        _info(f"  gateway SSE: AMI event → SSE frame p50 ({at})", p50, "ms"),
                        _info(f"  gateway SSE: AMI event → SSE frame p99 ({at})", p99,
                              f"ms ({shown} samples on {probes} probe client(s))"),
                        _info(f"  gateway SSE: gateway RSS, largest during the run ({at})", peak,
                              f"MiB (idle before the first client: {idle_rss:.0f} MiB)"),
                        _info(f"  gateway SSE: gateway CPU during the run ({at})", cores * 100, "% of a core"),
                        _info(f"  reference: AMI event → WatchSnapshot straight from status, p99, same run ({at})",
                              percentile(reference, 0.99), f"ms (p50 {percentile(reference, 0.5):.1f} ms)"),
                    ]  # fmt: skip
                gateway.stop()
    most, fewest = statistics.median(p99s[CLIENTS[-1]]), statistics.median(p99s[CLIENTS[0]])
    ratio = most / fewest
    windows = len(p99s[CLIENTS[0]])
    rows.append(
        {
            "name": f"gateway SSE: event → frame p99 at {CLIENTS[-1]} clients / at {CLIENTS[0]} client(s) (same run)",
            "value": round(ratio, 2),
            "unit": f"x ({most:.1f} vs {fewest:.1f} ms{f', medians of {windows} windows' if windows > 1 else ''})",
            "target": f"<= {P99_RATIO_TARGET:g}",
            "met": ratio <= P99_RATIO_TARGET and all(delivered_ok.values()),
        }
    )
    return rows


def _info(name: str, value: float, unit: str) -> dict[str, Any]:
    return {"name": name, "value": round(value, 3), "unit": unit, "target": "info", "met": True}


if __name__ == "__main__":
    for row in run():
        print(row)
