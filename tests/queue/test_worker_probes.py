"""A worker process answers Kubernetes probes on its /metrics port: liveness never follows Redis,
but a dead background task of the worker fails it."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from redis.asyncio import Redis

from devsupport.ports import free_port
from devsupport.procs import SpawnService
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from runtime.queue import JobContext, QueueSpec, Schedule, Worker
from runtime.queue.runner import WorkerProbes
from tests.support.http_probes import probe, wait_for


def test_a_redis_outage_makes_the_worker_unready_but_still_live(
    spawn: SpawnService, redis_server: RedisServer, redis_url: str
) -> None:
    port = free_port()
    worker = spawn("services.workflow.worker", env={"REDIS_URL": redis_url, "METRICS_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz", 200)
        assert probe(f"{base}/healthz") == (200, {"ok": True, "reason": None})
        redis_server.stop()
        body = wait_for(f"{base}/readyz", 503)
        assert body["reason"].startswith("redis: ")
        assert probe(f"{base}/healthz")[0] == 200
        redis_server.start()
        wait_for(f"{base}/readyz", 200)
        with urllib.request.urlopen(f"{base}/metrics", timeout=2) as response:
            assert b"queue_jobs_by_state" in response.read()
    finally:
        redis_server.start()
    assert worker.poll() is None, worker.output()


async def tick(ctx: JobContext) -> None:
    """The scheduled job (never due in this test)."""


@pytest.mark.timeout(60)
async def test_a_dead_schedules_task_fails_liveness_and_readiness(redis: Redis) -> None:
    spec = QueueSpec("probes_dead_task", [tick], schedules=[Schedule("hourly", "0 * * * *", "tick", {})])
    worker = Worker(spec, redis, schedule_poll_s=0.01)
    assert worker.scheduler is not None

    async def broken_check() -> None:
        raise RuntimeError("schedule state corrupt")

    worker.scheduler.check = broken_check  # type: ignore[method-assign]
    probes = WorkerProbes(redis, worker)
    running = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: probes.liveness() is not None, within=10, what="liveness to fail")
        expected = "task queue-schedules died: RuntimeError: schedule state corrupt"
        assert probes.liveness() == expected
        assert probes.readiness() == expected
    finally:
        worker.stop()
        await asyncio.wait_for(running, 20)
