"""The status tests' building blocks: a status app serving gRPC on loopback, and its settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.ports import free_port
from devsupport.status_leases import stamp
from runtime.grpc_server import GrpcServer
from services.status.app import StatusApp
from services.status.settings import StatusSettings


@dataclass
class RunningStatus:
    app: StatusApp
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: status_pb2_grpc.StatusServiceAsyncStub
    address: str
    tokens: dict[str, int] = field(default_factory=dict)
    """Lease tokens taken so far, by source (a test may stop Redis after the first batch)."""

    async def leased(self, *batches: status_pb2.IngestBatch) -> list[status_pb2.IngestBatch]:
        """``batches`` with their source's lease token where they carry none (for store calls)."""
        return list(await stamp(self.app.service.store.client, batches, self.tokens))

    async def ingest(self, *batches: status_pb2.IngestBatch) -> list[status_pb2.IngestAck]:
        """One Ingest stream carrying ``batches``; returns the acks once this replica's state has them.

        Batches without a fencing token get the one of their source's lease (taken if free).
        """
        await stamp(self.app.service.store.client, batches, self.tokens)
        call = self.stub.Ingest(iter(batches), timeout=10)
        acks = [ack async for ack in call]
        if acks:
            assert await self.app.service.follower.caught_up(acks[-1].revision, 5.0)
        return acks


MakeStatus = Callable[..., Awaitable[RunningStatus]]


def settings_for(redis_url: str, database_url: str, **overrides: Any) -> StatusSettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "database_url": database_url,
        # No status_addr: a test's server binds a free port as it starts (``on_any_port``).
        "ami_ingest_addr": f"127.0.0.1:{free_port()}",
        "status_resync_timeout_seconds": 0.5,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return StatusSettings(**values)
