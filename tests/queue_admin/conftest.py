"""Queue admin fixtures: the real servicer on a loopback grpc.aio server over real Redis, the
workflow queue declared in the registry, and real ``services.workflow.worker`` processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from devsupport.procs import ServiceProcess, SpawnService
from devsupport.waiting import wait_until
from runtime.queue import QueueAdmin, QueueSpec
from runtime.queue.registry import declare
from services.workflow.queue import workflow_queue
from tests.queue_admin.harness import AdminServer, StartWorker, start_admin_server, stop_admin_server, workflow_settings


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
