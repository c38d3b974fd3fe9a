"""Queue-layer fixtures: a Redis client, the workflow queue with test timings, worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis as redis_sync
from redis.asyncio import Redis

from devsupport.procs import ServiceProcess, SpawnService
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until, wait_until_blocking
from runtime.queue import QueueAdmin, QueueClient, QueueSpec
from services.workflow.queue import workflow_queue
from tests.queue.harness import StartWorkers, settings, worker_env, workers_at_least


@pytest.fixture
def spec(redis_url: str) -> QueueSpec:
    return workflow_queue(settings(redis_url))


@pytest.fixture
async def client(spec: QueueSpec, redis: Redis) -> AsyncIterator[QueueClient]:
    producer = QueueClient(spec, redis)
    yield producer
    await producer.close()


@pytest.fixture
def admin(spec: QueueSpec, redis: Redis) -> QueueAdmin:
    return QueueAdmin(spec, redis)


@pytest.fixture
def start_workers(spawn: SpawnService, redis_url: str, admin: QueueAdmin) -> StartWorkers:
    """Start ``count`` real ``python -m services.workflow.worker`` processes and wait until each
    registered its heartbeat."""

    async def _start(count: int = 1, **overrides: Any) -> list[ServiceProcess]:
        before = len(await admin.workers())
        env = worker_env(settings(redis_url, **overrides))
        procs = [spawn("services.workflow.worker", env=env) for _ in range(count)]
        await wait_until(lambda: workers_at_least(admin, before + count), within=20, what="workers up")
        return procs

    return _start


@pytest.fixture(scope="module")
def module_worker(redis_server: RedisServer) -> Iterator[ServiceProcess]:
    """One worker process with the test settings, shared by the tests of a module that need
    nothing else: each test still starts on a flushed Redis (the worker keeps serving across the
    flush), and saves a process start (~1 s)."""
    redis_server.start()  # an outage test of another module may have left it stopped
    process = ServiceProcess.module("services.workflow.worker", env=worker_env(settings(redis_server.url)))
    process.start()
    workers_key = workflow_queue(settings(redis_server.url)).keys.workers
    with redis_sync.Redis.from_url(redis_server.url) as probe:

        def heartbeat() -> bool:
            assert process.poll() is None, process.output()
            return bool(probe.zcard(workers_key))

        wait_until_blocking(heartbeat, within=20, what="the shared worker's heartbeat", interval=0.02)
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def shared_worker(module_worker: ServiceProcess, redis_url: str) -> ServiceProcess:
    """The module's shared worker, alive, with Redis flushed for this test."""
    assert module_worker.poll() is None, module_worker.output()
    return module_worker
