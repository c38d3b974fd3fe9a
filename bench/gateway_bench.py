"""Gateway read latency: ``GET /api/queue-status/snapshot`` p50/p99 over HTTP on loopback.

The whole real path, each piece its own process as in production: a redis-server, the status
service (``python -m services.status``) holding a 200-operator / 20-queue / 100-channel center
ingested over gRPC, and the gateway (``python -m gateway``, answering from its status mirror once
the watch is live: the bench reports how many answers the mirror gave). This process is only the
HTTP client: one keep-alive connection, requests one after another, wall time per full response.
The target rows use the stdlib's ``http.client`` (a thin client: what is measured is the
gateway) and judge p50 and p99 as ratios to an anchor timed in alternating rounds with them: a
raw redis-py read of the same rows from the same Redis plus their JSON encoded with orjson
(bench/_redis_anchor.py); the absolute times are information. The same run through httpx is
printed beside it, since httpx's pure-Python h11 parser alone spends about 2 ms reading a 376 KiB body.
The same figures follow for a 1,000-operator center (the targets hold for both sizes), and beside each the
status service's own GetSnapshot latency measured from here, so the gateway's share is visible.
The gRPC-fallback path follows: a second gateway with its mirror switched off answers every
read with one GetSnapshot call and turns the reply's rows into JSON (parsing only rows no earlier
reply held), which is what any gateway does while its mirror is stale or its watch is down (the
same ``StatusReads`` code, without a view).
Each name carries the 1-minute load average: on a shared 2-core box the tail follows the load.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
import redis
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from bench._redis_anchor import interleaved_latencies, ratio_row, raw_read_as_json
from devsupport.auth import AUTH_HEADERS, aio_channel
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from devsupport.status_batches import batch, center
from devsupport.status_leases import lease_token

TARGET_P99_MS = 5.0
WARMUP = 200
SAMPLES = 1500
SECONDS = 3.0
"""Of thin-client reads of each kind (the gateway, its anchor), in alternating rounds."""
T = TypeVar("T")


async def _ingest(address: str, token: int, changes: list[status_pb2.StateChange], sequence: int) -> None:
    async with aio_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        call = stub.Ingest(iter([batch(*changes, sequence=sequence, replace_all=True, token=token)]), timeout=30)
        async for _ in call:
            pass


async def _grpc_latencies(address: str) -> list[float]:
    """GetSnapshot straight from the status service: what the gateway itself adds is the difference."""
    latencies: list[float] = []
    async with aio_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        for index in range(WARMUP + SAMPLES):
            started = time.perf_counter()
            await stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)
            if index >= WARMUP:
                latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _snapshot_get(connection: http.client.HTTPConnection) -> Callable[[], None]:
    """One full ``/api/queue-status/snapshot`` response over ``connection`` (keep-alive)."""

    def get() -> None:
        connection.request("GET", "/api/queue-status/snapshot", headers=AUTH_HEADERS)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200 or not body:
            raise RuntimeError(f"snapshot answered {response.status}")

    return get


def _measure_thin(port: int, anchors: Mapping[str, Callable[[], object]] | None = None) -> dict[str, list[float]]:
    """Latencies of the gateway's snapshot (``"gateway"``) and of each anchor, in alternating rounds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    calls = {"gateway": _snapshot_get(connection), **(anchors or {})}
    try:
        return interleaved_latencies(calls, seconds=SECONDS * len(calls), warm_up=WARMUP)
    finally:
        connection.close()


def _mirror_share(base_url: str) -> tuple[float, float]:
    """(answers from the mirror, answers by a gRPC call) so far, from the gateway's /metrics."""
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    counts = dict(re.findall(r'switchboard_gateway_status_reads_total\{path="(\w+)"\} ([0-9.e+]+)', text))
    return float(counts.get("mirror", 0)), float(counts.get("grpc", 0))


def _measure(base_url: str) -> tuple[list[float], int]:
    latencies: list[float] = []
    with httpx.Client(base_url=base_url, timeout=5, headers=AUTH_HEADERS) as client:
        for _ in range(WARMUP):
            client.get("/api/queue-status/snapshot").raise_for_status()
        size = 0
        for _ in range(SAMPLES):
            started = time.perf_counter()
            response = client.get("/api/queue-status/snapshot")
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            size = len(response.content)
    return latencies, size


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def _results(
    label: str, thin: dict[str, list[float]], latencies: list[float], size: int, grpc_latencies: list[float], share: str
) -> list[dict[str, Any]]:
    gateway, anchor = thin["gateway"], thin["anchor"]
    rows = [
        {
            "name": f"  reference: status GetSnapshot over gRPC p50/p99 ({label})",
            "value": round(_p(grpc_latencies, 50), 3),
            "unit": f"ms (p99 {_p(grpc_latencies, 99):.2f} ms)",
            "target": "info",
            "met": True,
        },
        {
            "name": f"  same through an httpx client p50/p99 ({label})",
            "value": round(_p(latencies, 50), 3),
            "unit": f"ms (p99 {_p(latencies, 99):.2f} ms)",
            "target": "info",
            "met": True,
        },
    ]
    for name, q in (("p50", 50), ("p99", 99)):
        detail = f", {size // 1024} KiB JSON, {share}" if name == "p50" else ""
        rows += [
            {"name": f"  gateway /snapshot {name} ({label}{detail})", "value": round(_p(gateway, q), 3),
             "unit": "ms", "target": "info", "met": True},
            {"name": f"  anchor: raw redis-py read + orjson of the same rows {name} ({label})",
             "value": round(_p(anchor, q), 3), "unit": "ms", "target": "info", "met": True},
            ratio_row(f"gateway /snapshot {name} / raw Redis read + orjson {name} ({label})",
                      _p(gateway, q), _p(anchor, q), "Redis + orjson"),
        ]  # fmt: skip
    return rows


def _fallback_results(label: str, thin: list[float], share: str) -> list[dict[str, Any]]:
    p99 = _p(thin, 99)
    return [
        {
            "name": f"gateway /snapshot by one gRPC call p50 (mirror stale/off, {label}, {share})",
            "value": round(_p(thin, 50), 3),
            "unit": "ms",
            "target": "info",
            "met": True,
        },
        {
            "name": f"gateway /snapshot by one gRPC call p99 (mirror stale/off, {label})",
            "value": round(p99, 3),
            "unit": "ms",
            "target": f"<= {TARGET_P99_MS:g}",
            "met": p99 <= TARGET_P99_MS,
        },
    ]


def _answers(base_url: str, measure: Callable[[], T]) -> tuple[T, str]:
    """``measure()``'s latencies and who answered meanwhile (mirror/gRPC, from /metrics)."""
    mirror_before, grpc_before = _mirror_share(base_url)
    latencies = measure()
    mirror_after, grpc_after = _mirror_share(base_url)
    return latencies, f"{mirror_after - mirror_before:.0f} mirror/{grpc_after - grpc_before:.0f} gRPC answers"


def run() -> list[dict[str, Any]]:
    data_dir = tempfile.mkdtemp(prefix="sb-gw-bench-")
    status_addr = f"127.0.0.1:{free_port()}"
    gateway_port, fallback_port = free_port(), free_port()
    common = {"STATUS_ADDR": status_addr, "LOG_LEVEL": "WARNING", "METRICS_PORT": "-1", "DATA_DIR": data_dir}
    # One ingest per center, then thousands of reads: on a loaded machine they outlast the default
    # 15 s, and a stale state is (rightly) answered by gRPC, not by the mirror this bench measures.
    common["STATUS_STALE_AFTER_SECONDS"] = "3600"
    # The thin client's connection idles while the anchor's turn runs: on a loaded machine a
    # turn outlasts the default 5 s keep-alive and the gateway closes it under the next request.
    common["GATEWAY_KEEP_ALIVE_SECONDS"] = "300"
    results: list[dict[str, Any]] = []
    with RedisServer() as redis_server:
        status = ServiceProcess.module("services.status", env={**common, "REDIS_URL": redis_server.url})
        gateway = ServiceProcess.module("gateway", env={**common, "GATEWAY_PORT": str(gateway_port)})
        fallback_env = {**common, "GATEWAY_PORT": str(fallback_port), "GATEWAY_STATUS_MIRROR": "false"}
        fallback = ServiceProcess.module("gateway", env=fallback_env)
        with status, gateway, fallback, redis.Redis.from_url(redis_server.url) as rows_client:
            status.wait_serving(status_addr, timeout=60)
            gateway.wait_http(f"http://127.0.0.1:{gateway_port}/healthz", timeout=60)
            fallback.wait_http(f"http://127.0.0.1:{fallback_port}/healthz", timeout=60)
            token = lease_token(redis_server.url)  # the ingest this benchmark plays holds the lease
            anchors = {"anchor": lambda: raw_read_as_json(rows_client)}
            for sequence, (operators, queues, channels) in enumerate([(200, 20, 100), (1000, 20, 100)], start=1):
                asyncio.run(_ingest(status_addr, token, center(operators, queues, channels), sequence))
                grpc_latencies = asyncio.run(_grpc_latencies(status_addr))
                base_url = f"http://127.0.0.1:{gateway_port}"
                thin, share = _answers(base_url, lambda: _measure_thin(gateway_port, anchors))
                latencies, size = _measure(base_url)
                fallback_url = f"http://127.0.0.1:{fallback_port}"
                by_grpc, fallback_share = _answers(fallback_url, lambda: _measure_thin(fallback_port)["gateway"])
                load = os.getloadavg()[0]
                label = f"{operators} ops/{queues} queues/{channels} channels, real status+Redis, load {load:.1f}"
                results += _results(label, thin, latencies, size, grpc_latencies, share)
                results += _fallback_results(label, by_grpc, fallback_share)
    return results


if __name__ == "__main__":
    for row in run():
        print(row)
