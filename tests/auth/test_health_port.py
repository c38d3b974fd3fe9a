"""With mTLS on, GRPC_HEALTH_PORT serves grpc.health.v1 in plaintext, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devsupport.ports import ANY_LOOPBACK_PORT, free_ports
from devsupport.procs import SpawnService, health_status
from runtime.auth.tls import server_credentials
from runtime.config import CommonSettings
from runtime.grpc_server import GrpcServer, GrpcService
from tests.auth.certs import CertificateAuthority
from tests.auth.harness import Keys
from tests.auth.test_mtls import SCOPES, SERVICE, call, register, settings_for


@pytest.fixture
async def server(tmp_path: Path, keys: Keys) -> AsyncIterator[GrpcServer]:
    ca = CertificateAuthority(tmp_path)
    authenticator = keys.authenticator()
    server = GrpcServer(
        GrpcService(name="vault", address=ANY_LOOPBACK_PORT, register=register, service_names=[SERVICE], scopes=SCOPES),
        authenticator=authenticator,
        credentials=server_credentials(settings_for(ca.issue("vault"))),
        grace_seconds=0.1,
        health_port=0,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await authenticator.close()


async def health(address: str, service: str = "") -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
    return reply.status


async def test_a_plaintext_probe_reads_the_health_of_an_mtls_server(server: GrpcServer) -> None:
    assert server.health_port
    address = f"127.0.0.1:{server.health_port}"
    assert await health(address) == health_pb2.HealthCheckResponse.SERVING
    assert await health(address, "liveness") == health_pb2.HealthCheckResponse.SERVING


async def test_the_health_port_serves_no_other_method(server: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.health_port}") as channel:
        assert await call(channel, "Peek") is grpc.StatusCode.UNIMPLEMENTED


async def test_the_service_port_still_refuses_plaintext(server: GrpcServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        assert await call(channel, "Peek") is grpc.StatusCode.UNAVAILABLE


async def test_a_draining_server_says_not_serving_on_the_health_port(server: GrpcServer) -> None:
    address = f"127.0.0.1:{server.health_port}"
    await server.health.shutdown()
    assert await health(address) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_the_health_port_is_a_setting() -> None:
    assert CommonSettings(grpc_health_port="8081").grpc_health_port == 8081  # type: ignore[arg-type]
    assert CommonSettings(grpc_health_port="").grpc_health_port is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="TCP port"):
        CommonSettings(grpc_health_port=0)


@pytest.mark.timeout(60)
def test_a_service_process_with_mtls_answers_plaintext_probes_on_its_health_port(
    spawn: SpawnService, redis_url: str, tmp_path: Path
) -> None:
    # As the production overlay runs it (k8s/components/mtls): GRPC_TLS_* and GRPC_HEALTH_PORT.
    service_port, health_port = free_ports(2)
    issued = CertificateAuthority(tmp_path).issue("queue-admin")
    env = {
        **issued.env(),
        "GRPC_HEALTH_PORT": str(health_port),
        "QUEUE_ADMIN_ADDR": f"127.0.0.1:{service_port}",
        "REDIS_URL": redis_url,
        "DATA_DIR": str(tmp_path / "data"),
        "METRICS_PORT": "-1",
    }
    process = spawn("services.queue_admin", env=env)
    process.wait_serving(f"127.0.0.1:{health_port}")
    assert health_status(f"127.0.0.1:{health_port}", "liveness") == "SERVING"
    assert health_status(f"127.0.0.1:{service_port}") != "SERVING"  # the service port wants a certificate
