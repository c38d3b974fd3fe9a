"""The whole live-status path in one event loop, for tests: AMI source → ami_ingest → status
service (real gRPC on loopback, real Redis, SQLite) → gRPC reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import on_any_port
from devsupport.waiting import wait_until
from runtime.grpc_server import GrpcServer
from services.ami_ingest.app import IngestApp
from services.ami_ingest.settings import AmiIngestSettings
from services.ami_ingest.simulator.protocol import Credentials
from services.status.app import create_app
from services.status.settings import StatusSettings

AMI_CREDENTIALS = Credentials("ingest-test", "not-a-default-secret")
"""The login the pipeline's ami_ingest uses; the simulators the tests start accept exactly this."""


@dataclass
class Pipeline:
    ingest: IngestApp
    status: status_pb2_grpc.StatusServiceAsyncStub
    status_addr: str

    async def settle(self) -> None:
        """Wait (at most 15 s) until the ingest has applied, sent and had acknowledged everything
        its AMI client has received."""
        quiet = 0

        def idle_three_looks_running() -> bool:
            # Idle on three consecutive looks: nothing in flight between the stages either.
            nonlocal quiet
            client, ingest = self.ingest.client, self.ingest
            idle = ingest.ingestor.idle and ingest.publisher.idle and ingest.ingestor.ready
            quiet = quiet + 1 if idle and (client is None or not client.queued_events) else 0
            return quiet >= 3

        await wait_until(idle_three_looks_running, within=15, what="the ingest settles")

    async def snapshot(self) -> status_pb2.Snapshot:
        return await self.status.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)


@asynccontextmanager
async def running_pipeline(
    redis_url: str, data_dir: Path, *, ami_port: int, ami_auth: str = "plain", **ingest_env: Any
) -> AsyncIterator[Pipeline]:
    status_app = await create_app(StatusSettings(redis_url=redis_url, data_dir=data_dir))
    await status_app.start()
    server = GrpcServer(on_any_port(status_app.grpc_service()), authenticator=authenticator_for_tests())
    status_addr = f"127.0.0.1:{await server.start()}"
    ingest = IngestApp(
        AmiIngestSettings(
            redis_url=redis_url,
            status_addr=status_addr,
            ami_host="127.0.0.1",
            ami_port=ami_port,
            ami_auth=ami_auth,  # type: ignore[arg-type]
            ami_username=AMI_CREDENTIALS.username,
            ami_secret=SecretStr(AMI_CREDENTIALS.secret),
            ingest_heartbeat_seconds=0.5,
            **ingest_env,
        )
    )
    await ingest.start()
    channel = aio_channel(status_addr)
    try:
        yield Pipeline(ingest, status_pb2_grpc.StatusServiceStub(channel), status_addr)
    finally:
        await channel.close()
        await ingest.stop()
        await server.stop()
