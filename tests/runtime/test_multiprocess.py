"""``GRPC_PROCESSES=N`` on the probe service: the supervisor, its workers, their metrics ports."""

from __future__ import annotations

import os
import signal
import socket
import time

from devsupport.ports import free_port
from devsupport.procs import descendants, health_status, http_status, is_alive
from devsupport.waiting import wait_until_blocking
from runtime.multiprocess import WORKER_ENV, worker_env
from tests.runtime.harness import PROBE_SERVICE, StartProbe


def consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports that are free right now."""
    for _ in range(50):
        first = free_port()
        probes: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                probes.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in probes:
                sock.close()
        return first
    raise RuntimeError(f"no {count} consecutive free ports found")


def test_each_worker_gets_the_marker_and_its_own_metrics_port() -> None:
    base = {"METRICS_PORT": "9100", "REDIS_URL": "redis://x"}
    assert worker_env(0, 9100, base)["METRICS_PORT"] == "9100"
    assert worker_env(2, 9100, base)["METRICS_PORT"] == "9102"
    assert worker_env(1, 0, base)["METRICS_PORT"] == "0"  # free ports, each worker logs its own
    assert worker_env(1, -1, base)["METRICS_PORT"] == "-1"
    assert worker_env(1, 0, base)[WORKER_ENV] == "1"
    assert worker_env(1, 0, base)["REDIS_URL"] == "redis://x"


def test_a_fixed_metrics_port_gives_worker_i_port_plus_i_and_sigterm_stops_all(start_probe: StartProbe) -> None:
    metrics_port = consecutive_free_ports(3)  # P, P+1 for the workers; P+2 must stay silent
    probe = start_probe(GRPC_PROCESSES="2", METRICS_PORT=str(metrics_port))
    wait_until_blocking(
        lambda: probe.process.stdout.count('"server started"') == 2,
        within=10,
        what="both workers started",
        detail=probe.process.output,
    )
    workers = descendants(probe.process.pid)
    assert len(workers) == 2
    for port in (metrics_port, metrics_port + 1):
        assert http_status(f"http://127.0.0.1:{port}/metrics") == 200, probe.process.output()
    assert http_status(f"http://127.0.0.1:{metrics_port + 2}/metrics") is None
    assert probe.call("Echo", b"hi") == b"hi"

    signalled = time.monotonic()
    assert probe.process.stop(signal.SIGTERM, timeout=10) == 0, probe.process.output()
    assert time.monotonic() - signalled < 5.0
    assert not any(is_alive(pid) for pid in workers)
    assert probe.process.stdout.count("hook ran") == 2  # every worker drained and ran its hooks


def test_a_worker_that_dies_stops_the_unit_with_status_1(start_probe: StartProbe) -> None:
    probe = start_probe(GRPC_PROCESSES="2", METRICS_PORT="0")
    wait_until_blocking(
        lambda: probe.process.stdout.count('"server started"') == 2,
        within=10,
        what="both workers started",
        detail=probe.process.output,
    )
    victim, survivor = sorted(descendants(probe.process.pid))
    os.kill(victim, signal.SIGKILL)
    assert probe.process.wait_exit(timeout=10) == 1, probe.process.output()
    assert not is_alive(survivor)
    assert "worker exited unexpectedly" in probe.process.stdout
    assert health_status(probe.address, PROBE_SERVICE).startswith("error")


def test_workers_drain_and_exit_when_their_supervisor_is_killed(start_probe: StartProbe) -> None:
    probe = start_probe(GRPC_PROCESSES="2", METRICS_PORT="0")
    wait_until_blocking(
        lambda: probe.process.stdout.count('"server started"') == 2,
        within=10,
        what="both workers started",
        detail=probe.process.output,
    )
    workers = descendants(probe.process.pid)
    os.kill(probe.process.pid, signal.SIGKILL)
    probe.process.wait_exit(timeout=5)
    wait_until_blocking(
        lambda: not any(is_alive(pid) for pid in workers),
        within=8,
        what="the orphaned workers exit",
        detail=probe.process.output,
    )
    assert probe.process.stdout.count("supervisor gone") == 2
    assert probe.process.stdout.count("hook ran") == 2
