"""Through a Redis outage every process of the suite stays live, and only readiness says it cannot work.

The kubelet restarts a container whose liveness probe fails and takes a pod out of its Service
while its readiness probe fails. A Redis outage must do the second, never the first: restarting
every pod would only add reconnects and resyncs once Redis is back. Each test reads the probe the
manifests point at (``k8s/base``; ``tests/k8s/test_manifests.py`` checks that they do) of one
``make run`` suite on the tests' own Redis, stopped once every process was ready:

- gRPC services: liveness asks the health service ``liveness``, readiness the overall health;
- queue workers: ``/healthz`` and ``/readyz`` on their metrics port;
- the gateway: ``/healthz`` and ``/readyz``.

Status and the gateway stay ready on purpose: status answers reads from its database, and the
gateway's readiness is its own (``/readyz/backends`` is the suite-wide view).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_ports
from devsupport.procs import ServiceProcess, health_status
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until_blocking
from runtime.health import LIVENESS_SERVICE
from scripts.local_plan import AMI_FEED, NOTIFY_SINKS, load_procfile
from tests.support.http_probes import probe, wait_for
from tests.support.local_suite import local_suite_ports

# The module's first test also starts the suite (its timeout covers the fixture).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

GRPC_ADDRS = {
    "status": "STATUS_ADDR",
    "ami_ingest": "AMI_INGEST_ADDR",
    "media": "MEDIA_ADDR",
    "notify": "NOTIFY_ADDR",
    "queue_admin": "QUEUE_ADMIN_ADDR",
}
NEED_REDIS_TO_SERVE = ("ami_ingest", "media", "notify", "queue_admin")
"""The gRPC services with nothing to serve without Redis (status falls back to its database)."""
WORKERS = tuple(name for name in load_procfile() if name not in {*GRPC_ADDRS, "gateway", AMI_FEED, NOTIFY_SINKS})
"""Every queue worker of the Procfile (each a Deployment with /healthz and /readyz probes)."""
READY_WITHIN_SECONDS = 120.0
NOTICED_WITHIN_SECONDS = 30.0
"""Wait bounds on a loaded machine; health checks and worker pings run every second."""


@dataclass(frozen=True)
class Outage:
    runner: ServiceProcess
    grpc: dict[str, str]
    """gRPC service → its address."""
    workers: dict[str, str]
    """Queue worker → the base URL of its metrics port."""
    gateway: str

    def still_running(self) -> None:
        """Every process is still up: ``make run`` stops them all as soon as one exits."""
        assert self.runner.poll() is None, self.runner.output()


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    redis = RedisServer()  # the tests' own: stopping it touches no other test's Redis
    redis.start()
    try:
        suite = local_suite_ports(redis.url, Path(tmp_path_factory.mktemp("outage")) / "data")
        worker_ports = dict(zip(WORKERS, free_ports(len(WORKERS)), strict=True))
        env = {
            **suite.env,
            **{f"{name.upper()}_METRICS_PORT": str(port) for name, port in worker_ports.items()},
            # Empty is unset: the demo AMI feed, every process, the suite's own SQLite database.
            "AMI_HOST": "",
            "RUN_PROCESSES": "",
            "DATABASE_URL": "",
        }
        gateway = f"http://127.0.0.1:{suite.gateway}"
        workers = {name: f"http://127.0.0.1:{port}" for name, port in worker_ports.items()}
        runner = ServiceProcess.module("scripts.run_local", env=env).start()
        try:
            runner.wait_http(f"{gateway}/readyz/backends", timeout=READY_WITHIN_SECONDS)
            for url in workers.values():
                wait_for(f"{url}/readyz", 200, within=READY_WITHIN_SECONDS, detail=runner.output)
            redis.stop()
            grpc = {name: suite.addresses[variable] for name, variable in GRPC_ADDRS.items()}
            yield Outage(runner, grpc, workers, gateway)
            redis.start()  # the outage ends before Ctrl-C, so every process stops as it normally does
        finally:
            if runner.poll() is None:
                runner.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):  # close() kills what is left
                    runner.wait_exit(timeout=30)
            runner.close()
    finally:
        redis.close()


def health_becomes(outage: Outage, name: str, wanted: str, service: str = "") -> None:
    address = outage.grpc[name]
    wait_until_blocking(
        lambda: health_status(address, service, timeout=5) == wanted,
        within=NOTICED_WITHIN_SECONDS,
        what=f"{name} health {service!r} {wanted}",
        interval=0.2,
        detail=outage.runner.output,
    )


@pytest.mark.parametrize("name", NEED_REDIS_TO_SERVE)
def test_a_grpc_service_needing_redis_stays_live_but_not_ready_while_redis_is_down(outage: Outage, name: str) -> None:
    health_becomes(outage, name, "NOT_SERVING")
    assert health_status(outage.grpc[name], LIVENESS_SERVICE, timeout=5) == "SERVING"
    outage.still_running()


def test_status_stays_live_and_ready_on_its_database_while_redis_is_down(outage: Outage) -> None:
    request = status_pb2.GetSyncStatusRequest()
    with sync_channel(outage.grpc["status"]) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        wait_until_blocking(
            lambda: not stub.GetSyncStatus(request, timeout=5).redis_available,
            within=NOTICED_WITHIN_SECONDS,
            what="status seeing Redis unavailable",
            interval=0.2,
            detail=outage.runner.output,
        )
    health_becomes(outage, "status", "SERVING")
    assert health_status(outage.grpc["status"], LIVENESS_SERVICE, timeout=5) == "SERVING"
    outage.still_running()


@pytest.mark.parametrize("name", WORKERS)
def test_a_queue_worker_stays_live_but_not_ready_while_redis_is_down(outage: Outage, name: str) -> None:
    url = outage.workers[name]
    body = wait_for(f"{url}/readyz", 503, within=NOTICED_WITHIN_SECONDS, detail=outage.runner.output)
    assert body["reason"].startswith("redis: "), body
    assert probe(f"{url}/healthz", timeout=5) == (200, {"ok": True, "reason": None})
    outage.still_running()


def test_the_suite_readiness_names_the_backends_that_need_redis(outage: Outage) -> None:
    def not_serving() -> list[str] | None:
        code, body = probe(f"{outage.gateway}/readyz/backends", timeout=10)
        return body["error"]["details"]["notServing"] if code == 503 else None

    # Wait for the full list: each backend notices at its own next health check.
    wait_until_blocking(
        lambda: sorted(not_serving() or []) == sorted(NEED_REDIS_TO_SERVE),
        within=NOTICED_WITHIN_SECONDS,
        what=f"/readyz/backends naming {', '.join(NEED_REDIS_TO_SERVE)}",
        interval=0.2,
        detail=lambda: f"last: {not_serving()}\n{outage.runner.output()}",
    )


def test_the_gateway_stays_live_and_ready_while_redis_is_down(outage: Outage) -> None:
    # Once a backend reports the outage, so the gateway's answers are from during it.
    wait_for(f"{outage.gateway}/readyz/backends", 503, within=NOTICED_WITHIN_SECONDS, detail=outage.runner.output)
    assert probe(f"{outage.gateway}/healthz", timeout=5)[0] == 200
    assert probe(f"{outage.gateway}/readyz", timeout=5) == (200, {"success": True, "data": {"ready": True}})
    outage.still_running()
