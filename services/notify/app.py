"""Wiring of the notify service: database, Redis, the two queue producers, templates, the inbox hub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError
from switchboard.notify.v1 import notify_pb2_grpc

from runtime.db import create_engine, db_health_check
from runtime.grpc_server import GrpcService
from runtime.logging import get_logger
from runtime.migrations import upgrade
from runtime.queue import DiskSpool, QueueAdmin, QueueClient
from runtime.queue.registry import declare
from runtime.redis import create_redis, redis_health_check
from runtime.supervision import TaskSupervisor
from services.notify.domain.templates import TemplateLibrary
from services.notify.inbox_hub import InboxHub
from services.notify.metrics import QUEUE_SIZE, QUEUE_SWITCHES
from services.notify.migrate import ALEMBIC_INI
from services.notify.queues import queue_specs
from services.notify.service import NotifyCore
from services.notify.servicer import SCOPES, SERVICE_NAME, NotifyServicer
from services.notify.settings import NotifySettings
from services.notify.store import NotificationStore
from services.notify.user_store import UserStore

__all__ = ["NotifyApp", "build_service"]

log = get_logger("notify.app")

TASK_STOP_SECONDS = 1.0
"""How long ``close`` waits for its cancelled background tasks, and then for the hub and the queue
clients, before closing Redis and the database anyway."""


@dataclass
class NotifyApp:
    settings: NotifySettings
    core: NotifyCore
    redis: Redis
    events_redis: Redis
    queues: dict[str, QueueClient]
    admins: list[QueueAdmin]
    tasks: TaskSupervisor = field(default_factory=TaskSupervisor)

    @classmethod
    async def create(cls, settings: NotifySettings) -> NotifyApp:
        if settings.notify_migrate_on_start:
            await upgrade(ALEMBIC_INI, settings.async_database_url)
        engine = create_engine(settings.async_database_url)
        redis = create_redis(settings.redis_url, client_name="notify")
        # Pub/sub blocks on purpose: no socket timeout on the inbox hub's connection.
        events_redis = create_redis(settings.redis_url, socket_timeout=None, client_name="notify_inbox")
        spool = DiskSpool(settings.spool_path)
        specs = queue_specs(settings)
        queues = {name: QueueClient(spec, redis, spool=spool) for name, spec in specs.items()}
        for name, client in queues.items():
            await client.start()
            # Declared at start, so the queue admin (and /api/queue/stats) lists both queues even
            # before their workers' first heartbeat.
            with contextlib.suppress(RedisError, OSError):
                await declare(redis, specs[name])
        core = NotifyCore(
            settings=settings,
            store=NotificationStore(engine),
            users=UserStore(engine),
            queues=queues,
            templates=TemplateLibrary(),
            hub=InboxHub(events_redis),
        )
        app = cls(settings, core, redis, events_redis, queues, [QueueAdmin(s, redis) for s in specs.values()])
        app.tasks.spawn(app._watch_queues(), "notify-queue-gauges")
        return app

    async def _watch_queues(self) -> None:
        """``notification_queue_size`` and ``notification_queue_switches_total``, once a second."""
        health = {name: "ok" for name in self.queues}
        # Checks the supervisor's flag before each Redis call: a cancel can be lost inside one
        # (runtime.supervision), and the next call reconnected the pool close() had just disconnected.
        while not self.tasks.closing:
            for admin in self.admins:
                if self.tasks.closing:
                    return
                with contextlib.suppress(Exception):
                    counts = await admin.counts()
                    QUEUE_SIZE.labels(admin.name).set(counts.waiting + counts.delayed)
            for name, client in self.queues.items():
                now = client.health()
                if now != health[name]:
                    QUEUE_SWITCHES.labels(*(("redis", "spool") if now == "degraded" else ("spool", "redis"))).inc()
                    health[name] = now
            await self.tasks.pause(1.0)

    def grpc_service(self) -> GrpcService:
        engine = self.core.store.engine
        return GrpcService(
            name="notify",
            address=self.settings.notify_addr,
            register=lambda server: notify_pb2_grpc.add_NotifyServiceServicer_to_server(
                NotifyServicer(self.core), server
            ),
            service_names=[SERVICE_NAME],
            scopes=SCOPES,
            health_checks={"redis": redis_health_check(self.redis), "db": db_health_check(engine)},
            tasks=self.tasks,  # the queue gauges loop
            shutdown_hooks=[self.close],
            stopping_hooks=[self.core.hub.end_watches],
            bind_host=self.settings.grpc_bind_host,
        )

    async def close(self) -> None:
        """Stop the gauges, the inbox hub and the queue clients, then close Redis and the database;
        one that fails to close does not keep the others open, and neither does a task that is
        slow to end or a close cut short by the shutdown hook's timeout."""
        try:
            # Bounded: under load a cancelled gauges task has been seen not to end within the
            # whole shutdown budget (its cancel lost in a Redis call, runtime.supervision), and
            # waiting for it left Redis and the database open; one still running is logged there.
            # The hub and the queue clients wait for tasks of their own (the reader, the spool flusher).
            await self.tasks.stop(within=TASK_STOP_SECONDS)
            await _within(TASK_STOP_SECONDS, [self.core.hub.close(), *(c.close() for c in self.queues.values())])
        finally:
            for step in (self.events_redis.aclose, self.redis.aclose, self.core.store.engine.dispose):
                try:
                    await step()
                except Exception as exc:  # closing at shutdown: report and go on
                    log.warning("close failed", error=repr(exc))


async def _within(seconds: float, steps: Sequence[Awaitable[object]]) -> None:
    """Wait up to ``seconds`` for ``steps``; report (and leave running) those not done by then."""
    futures = [asyncio.ensure_future(step) for step in steps]
    if not futures:
        return
    done, late = await asyncio.wait(futures, timeout=seconds)
    for future in done:
        if not future.cancelled() and future.exception() is not None:
            log.warning("close failed", error=repr(future.exception()))
    if late:
        log.warning("still closing after the wait", steps=[repr(f) for f in late])


async def build_service(settings: NotifySettings) -> GrpcService:
    app = await NotifyApp.create(settings)
    return app.grpc_service()
