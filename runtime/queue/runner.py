"""Run a queue's worker as a process: the process bootstrap (runtime.process), a Redis connection,
SIGTERM/SIGINT -> graceful stop, probes.

The worker answers Kubernetes probes on its ``/metrics`` port (:func:`runtime.metrics.set_probes`):
``/healthz`` while its event loop keeps ticking and none of the worker's supervised tasks died
(``Worker.tasks``, :mod:`runtime.supervision`; never Redis: an outage must not restart workers),
``/readyz`` while it is not stopping, live, and Redis answered its last ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.config import CommonSettings
from runtime.health import run_check
from runtime.logging import get_logger
from runtime.metrics import set_probes
from runtime.process import on_stop_signal, run_process, settle_heap_for_bursts
from runtime.queue.migrate import migrate_queue
from runtime.queue.spec import QueueSpec
from runtime.queue.worker import Worker
from runtime.redis_durability import check_redis_durability

log = get_logger("runtime.queue.runner")
TICK_SECONDS = 1.0
STALLED_AFTER_SECONDS = 10.0
"""A loop that has not ticked for this long is stuck (a job blocking it, a deadlock): not live."""


class WorkerProbes:
    """Liveness from the event loop's own ticks; readiness from a periodic Redis ping."""

    def __init__(self, redis: Redis, worker: Worker) -> None:
        self.redis = redis
        self.worker = worker
        self.last_tick = time.monotonic()
        self.redis_problem: str | None = "not checked yet"

    def liveness(self) -> str | None:
        stalled = time.monotonic() - self.last_tick
        if stalled > STALLED_AFTER_SECONDS:
            return f"event loop stalled for {stalled:.0f}s"
        dead = self.worker.tasks.failures
        return "; ".join(f"task {name} died: {reason}" for name, reason in dead.items()) if dead else None

    def readiness(self) -> str | None:
        if self.worker.stopping:
            return "stopping"
        return self.liveness() or (f"redis: {self.redis_problem}" if self.redis_problem else None)

    async def run(self) -> None:
        while True:
            self.last_tick = time.monotonic()
            self.redis_problem = await run_check(self.redis.ping, TICK_SECONDS)
            await asyncio.sleep(TICK_SECONDS)


async def migrate_from_v1(redis: Redis, queue: str) -> None:
    """Move the jobs a release on key layout v1 accepted (:mod:`runtime.queue.migrate`) beside the
    worker's start, which serves them as they arrive; retried until Redis answers."""
    pause = TICK_SECONDS
    while True:
        try:
            await migrate_queue(redis, queue)
            return
        except (RedisError, OSError, RuntimeError) as exc:  # RuntimeError: its lock expired mid-way
            log.warning("queue migration from v1 not done yet, retrying", queue=queue, error=str(exc), in_s=pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 30.0)


async def serve(
    spec: QueueSpec,
    redis_url: str,
    *,
    on_startup: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    on_shutdown: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> None:
    """Serve ``spec`` until SIGTERM/SIGINT; active jobs get ``spec.shutdown_grace_s`` to finish.

    ``on_startup`` fills the ``shared`` dict every job's ``ctx`` starts from (clients, pools);
    ``on_shutdown`` closes them after the last job has finished."""
    redis = Redis.from_url(redis_url, health_check_interval=0)
    shared: dict[str, Any] = {}
    if on_startup is not None:
        await on_startup(shared)
    worker = Worker(spec, redis, shared=shared)
    with contextlib.suppress(RedisError, OSError):  # unreachable now: the worker waits for it anyway
        await check_redis_durability(redis)
    settle_heap_for_bursts()  # job churn: GC pauses must not stall pickup
    probes = WorkerProbes(redis, worker)
    set_probes(liveness=probes.liveness, readiness=probes.readiness)
    probing = asyncio.create_task(probes.run(), name="worker-probes")
    migrating = asyncio.create_task(migrate_from_v1(redis, spec.name), name="queue-migrate-v1")
    try:
        with on_stop_signal(lambda _: worker.stop()):
            await worker.run()
    finally:
        probing.cancel()
        migrating.cancel()
        await asyncio.gather(probing, migrating, return_exceptions=True)
        if on_shutdown is not None:
            await on_shutdown(shared)
        await redis.aclose()


def run_worker(name: str, settings: CommonSettings, spec: QueueSpec, **kwargs: Any) -> NoReturn:
    """The whole life of a worker process called ``name``: logging, tracing and ``/metrics``
    (:func:`runtime.process.run_process`), then :func:`serve` until SIGTERM; ``kwargs`` go to
    :func:`serve`."""
    run_process(name, settings, lambda: serve(spec, settings.redis_url, **kwargs))
