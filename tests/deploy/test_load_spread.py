"""Replicas share the load: the gateway's calls spread over every status replica after a scale-up.

Three status processes listen on 127.0.0.1-3 behind one DNS name served by a loopback DNS server,
as a headless Service's name resolves to every ready pod. The gateway dials the name with
round_robin (runtime.grpc_client); the servers cap connection age, so after the scale-up the
gateway resolves the name again and every replica gets its share.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devsupport.auth import AUTH_HEADERS
from devsupport.ports import free_ports
from devsupport.procs import ServiceProcess, SpawnService
from devsupport.waiting import wait_until_blocking
from tests.support.dns_server import LoopbackDns

pytestmark = pytest.mark.slow

NAME = "status.switchboard.test"
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
CALLS = 300
TOLERANCE = 0.20


@pytest.fixture
def dns() -> Iterator[LoopbackDns]:
    with LoopbackDns() as server:
        yield server


def handled_list_operators(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "grpc_server_handled"
            for sample in family.samples
            if sample.name == "grpc_server_handled_total" and sample.labels.get("grpc_method") == "ListOperators"
        )
    )


def read_operators(gateway_port: int) -> None:
    url = f"http://127.0.0.1:{gateway_port}/api/queue-status/operators"
    with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH_HEADERS), timeout=10) as response:
        assert response.status == 200


@pytest.mark.timeout(240)
def test_calls_spread_evenly_over_three_status_replicas_after_a_scale_up(
    spawn: SpawnService, dns: LoopbackDns, redis_url: str, tmp_path: Path
) -> None:
    grpc_port, gateway_port, *metrics_ports = free_ports(5)
    common = {"REDIS_URL": redis_url, "DATA_DIR": str(tmp_path), "GRPC_MAX_CONNECTION_AGE_SECONDS": "2"}

    def start_status(index: int) -> ServiceProcess:
        address = f"{HOSTS[index]}:{grpc_port}"
        env = {**common, "STATUS_ADDR": address, "METRICS_PORT": str(metrics_ports[index])}
        process = spawn("services.status", env=env)
        process.wait_serving(address, timeout=60)
        return process

    replicas = [start_status(0)]
    dns.set(NAME, HOSTS[:1])
    gateway = spawn(
        "gateway",
        env={
            **common,
            "STATUS_ADDR": dns.target(NAME, grpc_port),
            "GATEWAY_PORT": str(gateway_port),
            "GATEWAY_STATUS_MIRROR": "false",
            "METRICS_PORT": "-1",
        },
    )
    gateway.wait_http(f"http://127.0.0.1:{gateway_port}/readyz", timeout=60)
    for _ in range(20):
        read_operators(gateway_port)
    assert handled_list_operators(metrics_ports[0]) == 20

    # Scale up: two more ready replicas appear under the name.
    replicas += [start_status(1), start_status(2)]
    dns.set(NAME, HOSTS)

    def every_replica_answered() -> bool:
        read_operators(gateway_port)
        return all(handled_list_operators(port) for port in metrics_ports)

    wait_until_blocking(every_replica_answered, within=60, what="the gateway reaching the new replicas")

    before = [handled_list_operators(port) for port in metrics_ports]
    for _ in range(CALLS):
        read_operators(gateway_port)
    shares = [handled_list_operators(port) - start for port, start in zip(metrics_ports, before, strict=True)]
    assert sum(shares) == CALLS
    fair = CALLS / len(HOSTS)
    assert all(abs(share - fair) <= TOLERANCE * fair for share in shares), shares
    for process in [*replicas, gateway]:
        assert process.poll() is None, process.output()
