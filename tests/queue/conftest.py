"""Queue-layer fixtures: a Redis client, the workflow queue with test timings, worker processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis as redis_sync
from redis.asyncio import Redis

from runtime.queue import QueueAdmin, QueueClient, QueueSpec
from services.workflow.queue import workflow_queue
from services.workflow.settings import WorkflowSettings
from tests.conftest import SpawnService
from tests.support.procs import ServiceProcess
from tests.support.redis_server import RedisServer

# Short timings so every behaviour shows within a second or two.
TEST_SETTINGS: dict[str, Any] = {
    "backoff_base_s": 0.05,
    "backoff_cap_s": 0.2,
    "lease_s": 1.0,
    "job_timeout_s": 5.0,
    "shutdown_grace_s": 2.0,
}


def settings(redis_url: str, **overrides: Any) -> WorkflowSettings:
    """Workflow settings with the test timings; ``overrides`` name queue knobs without the prefix."""
    knobs = {f"workflow_{k}": v for k, v in {**TEST_SETTINGS, **overrides}.items()}
    return WorkflowSettings(redis_url=redis_url, **knobs)


def worker_env(s: WorkflowSettings) -> dict[str, str]:
    return s.worker_environment()


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


StartWorkers = Callable[..., Awaitable[list[ServiceProcess]]]


@pytest.fixture
def start_workers(spawn: SpawnService, redis_url: str, admin: QueueAdmin) -> StartWorkers:
    """Start ``count`` real ``python -m services.workflow.worker`` processes and wait until each
    registered its heartbeat."""

    async def _start(count: int = 1, **overrides: Any) -> list[ServiceProcess]:
        before = len(await admin.workers())
        env = worker_env(settings(redis_url, **overrides))
        procs = [spawn("services.workflow.worker", env=env) for _ in range(count)]
        await wait_until(lambda: _count_at_least(admin, before + count), within=20, what="workers up")
        return procs

    return _start


@pytest.fixture(scope="module")
def module_worker(redis_server: RedisServer) -> Iterator[ServiceProcess]:
    """One worker process with the test settings, shared by the tests of a module that need
    nothing else: each test still starts on a flushed Redis (the worker keeps serving across the
    flush), and saves a process start (~1 s)."""
    process = ServiceProcess.module("services.workflow.worker", env=worker_env(settings(redis_server.url)))
    process.start()
    workers_key = workflow_queue(settings(redis_server.url)).keys.workers
    with redis_sync.Redis.from_url(redis_server.url) as probe:
        deadline = time.monotonic() + 20
        while not probe.zcard(workers_key):
            assert process.poll() is None, process.output()
            assert time.monotonic() < deadline, f"shared worker did not start:\n{process.output()}"
            time.sleep(0.02)
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def shared_worker(module_worker: ServiceProcess, redis_url: str) -> ServiceProcess:
    """The module's shared worker, alive, with Redis flushed for this test."""
    assert module_worker.poll() is None, module_worker.output()
    return module_worker


async def _count_at_least(admin: QueueAdmin, n: int) -> bool:
    return len(await admin.workers()) >= n


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float = 10.0, interval: float = 0.02, what: str = ""
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within} s waiting for {what or check}")


async def settled(admin: QueueAdmin) -> bool:
    counts = await admin.counts()
    return counts.waiting + counts.active + counts.delayed == 0
