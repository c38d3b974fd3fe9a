"""The queue admin tests' building blocks: the real servicer on a loopback grpc.aio server over real
Redis, and workflow settings with short timings for real ``services.workflow.worker`` processes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
from switchboard.queue.v1 import queue_pb2, queue_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import on_any_port
from devsupport.procs import ServiceProcess
from runtime.auth import Authenticator
from runtime.grpc_server import GrpcServer
from services.queue_admin.app import QueueAdminApp
from services.queue_admin.settings import QueueAdminSettings
from services.workflow.settings import WorkflowSettings

# Short timings so retries, leases and heartbeats show within a second.
WORKER_SETTINGS: dict[str, Any] = {
    "backoff_base_s": 0.02,
    "backoff_cap_s": 0.05,
    "lease_s": 1.0,
    "job_timeout_s": 5.0,
    "shutdown_grace_s": 1.0,
}

StartWorker = Callable[..., Awaitable[ServiceProcess]]


def workflow_settings(redis_url: str, **overrides: Any) -> WorkflowSettings:
    """Workflow settings with the test timings; ``overrides`` name queue knobs without the prefix."""
    knobs = {f"workflow_{k}": v for k, v in {**WORKER_SETTINGS, **overrides}.items()}
    return WorkflowSettings(redis_url=redis_url, **knobs)


@dataclass
class AdminServer:
    address: str
    app: QueueAdminApp
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: queue_pb2_grpc.QueueAdminAsyncStub

    async def state_of(self, job_id: str, queue: str = "workflow") -> queue_pb2.JobState.ValueType:
        job = await self.stub.GetJob(queue_pb2.JobRef(queue=queue, job_id=job_id), timeout=5)
        return job.state


async def start_admin_server(redis_url: str, data_dir: Path, authenticator: Authenticator | None = None) -> AdminServer:
    """The servicer on a loopback server; callers are verified by ``authenticator`` (default: the
    tests' bootstrap token). The returned stub calls with the bootstrap token."""
    settings = QueueAdminSettings(
        redis_url=redis_url,
        data_dir=data_dir,
        log_level="WARNING",
    )
    app = await QueueAdminApp.create(settings)
    server = GrpcServer(
        on_any_port(app.grpc_service()),
        authenticator=authenticator or authenticator_for_tests(),
        grace_seconds=0.5,
        health_interval_seconds=0.2,
    )
    port = await server.start()
    address = f"127.0.0.1:{port}"
    channel = aio_channel(address)
    return AdminServer(address, app, server, channel, queue_pb2_grpc.QueueAdminStub(channel))


async def stop_admin_server(admin: AdminServer) -> None:
    await admin.channel.close()
    await admin.server.stop()
