"""Queue admin fixtures: the real servicer on a loopback grpc.aio server over real Redis, the
workflow queue declared in the registry, and real ``services.workflow.worker`` processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
from redis.asyncio import Redis
from switchboard.queue.v1 import queue_pb2, queue_pb2_grpc

from runtime.grpc_server import GrpcServer
from runtime.queue import QueueAdmin, QueueSpec
from runtime.queue.registry import declare
from services.queue_admin.app import QueueAdminApp
from services.queue_admin.settings import QueueAdminSettings
from services.workflow.queue import workflow_queue
from services.workflow.settings import WorkflowSettings
from tests.conftest import SpawnService
from tests.support.ports import free_port
from tests.support.procs import ServiceProcess

# Short timings so retries, leases and heartbeats show within a second.
WORKER_SETTINGS: dict[str, Any] = {
    "backoff_base_s": 0.02,
    "backoff_cap_s": 0.05,
    "lease_s": 1.0,
    "job_timeout_s": 5.0,
    "shutdown_grace_s": 1.0,
}


def workflow_settings(redis_url: str, **overrides: Any) -> WorkflowSettings:
    """Workflow settings with the test timings; ``overrides`` name queue knobs without the prefix."""
    knobs = {f"workflow_{k}": v for k, v in {**WORKER_SETTINGS, **overrides}.items()}
    return WorkflowSettings(redis_url=redis_url, **knobs)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float = 10.0, interval: float = 0.02, what: str = ""
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within} s waiting for {what or check}")


@dataclass
class AdminServer:
    address: str
    app: QueueAdminApp
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: queue_pb2_grpc.QueueAdminStub

    async def state_of(self, job_id: str, queue: str = "workflow") -> queue_pb2.JobState.ValueType:
        job = await self.stub.GetJob(queue_pb2.JobRef(queue=queue, job_id=job_id), timeout=5)
        return job.state


async def start_admin_server(redis_url: str, data_dir: Path) -> AdminServer:
    settings = QueueAdminSettings(
        redis_url=redis_url,
        queue_admin_addr=f"127.0.0.1:{free_port()}",
        data_dir=data_dir,
        log_level="WARNING",
    )
    app = await QueueAdminApp.create(settings)
    server = GrpcServer(app.grpc_service(), grace_seconds=0.5, health_interval_seconds=0.2)
    port = await server.start()
    address = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(address)
    return AdminServer(address, app, server, channel, queue_pb2_grpc.QueueAdminStub(channel))


async def stop_admin_server(admin: AdminServer) -> None:
    await admin.channel.close()
    await admin.server.stop()


@pytest.fixture
def spec(redis_url: str) -> QueueSpec:
    return workflow_queue(workflow_settings(redis_url))


@pytest.fixture
async def declared(redis: Redis, spec: QueueSpec) -> QueueSpec:
    """The workflow queue in the registry, as a worker's heartbeat puts it there (no worker runs)."""
    await declare(redis, spec)
    return spec


@pytest.fixture
def layer(spec: QueueSpec, redis: Redis) -> QueueAdmin:
    """The queue layer's own view of the workflow queue, to check what the RPCs did."""
    return QueueAdmin(spec, redis)


@pytest.fixture
async def admin_server(redis_url: str, tmp_path: Path) -> AsyncIterator[AdminServer]:
    started = await start_admin_server(redis_url, tmp_path)
    try:
        yield started
    finally:
        await stop_admin_server(started)


StartWorker = Callable[..., Awaitable[ServiceProcess]]


@pytest.fixture
def start_worker(spawn: SpawnService, redis_url: str, layer: QueueAdmin) -> StartWorker:
    """A real ``python -m services.workflow.worker`` process, returned once its heartbeat shows."""

    async def _start(**overrides: Any) -> ServiceProcess:
        before = len(await layer.workers())
        s = workflow_settings(redis_url, **overrides)
        env = s.worker_environment()
        process = spawn("services.workflow.worker", env=env)

        async def up() -> bool:
            return len(await layer.workers()) > before

        await wait_until(up, within=20, what="workflow worker heartbeat")
        return process

    return _start
