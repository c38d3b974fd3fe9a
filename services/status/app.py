"""Wiring: build the status service's parts from its settings (used by ``__main__`` and tests)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db import create_engine
from runtime.grpc_server import GrpcService
from runtime.health import HealthCheck, run_check
from runtime.logging import get_logger
from runtime.redis import create_redis, redis_health_check
from runtime.supervision import TaskSupervisor
from services.status.core import StatusCore
from services.status.db import StatusDatabase
from services.status.follower import Follower
from services.status.ingest_control import request_asterisk_resync
from services.status.migrate import upgrade
from services.status.reads import StatusReader
from services.status.redis_store import RedisStore
from services.status.servicer import READ_METHODS, SCOPES, SERVICE_NAME, StatusServicer, register
from services.status.settings import StatusSettings
from services.status.watch import WatchHub

log = get_logger("status.app")


@dataclass
class StatusApp:
    settings: StatusSettings
    redis: Redis
    engine: AsyncEngine
    service: StatusCore
    servicer: StatusServicer

    async def start(self) -> None:
        await self.service.start()

    async def close(self) -> None:
        await self.service.stop()
        await self.redis.aclose()
        await self.engine.dispose()

    @property
    def redis_check(self) -> HealthCheck:
        """PING, plus the durability report of :mod:`runtime.redis_durability`."""
        return redis_health_check(self.redis)

    def storage_check(self) -> HealthCheck:
        """Passes while Redis or the database answers.

        Redis down but the database up is still SERVING on purpose: reads are answered from
        the database (source=DATABASE, stale) and the ingest gets UNAVAILABLE until Redis is
        back. Only with both gone is the service NOT_SERVING.
        """

        async def check() -> bool:
            redis_problem = await run_check(self.redis_check, 1.0)
            if redis_problem is None:
                return True
            db_problem = await run_check(self._db_ping, 1.0)
            if db_problem is None:
                return True
            raise RuntimeError(f"redis: {redis_problem}; database: {db_problem}")

        return check

    async def _db_ping(self) -> bool:
        await self.service.database.counts()
        return True

    def grpc_service(self) -> GrpcService:
        return GrpcService(
            name="status",
            address=self.settings.status_addr,
            register=functools.partial(register, self.servicer),
            service_names=[SERVICE_NAME],
            scopes=SCOPES,
            health_checks={"storage": self.storage_check()},
            tasks=self.service.tasks,  # a dead follower or config writer turns liveness NOT_SERVING
            shutdown_hooks=[self.close],
            stopping_hooks=[self.service.hub.close],
            # Reads are the hot path (wall screens, the gateway): successful fast ones log at DEBUG.
            debug_when_ok=frozenset(f"/{SERVICE_NAME}/{name}" for name in READ_METHODS),
        )


async def prepare_database(settings: StatusSettings) -> None:
    """Apply the migrations when ``STATUS_MIGRATE_ON_START`` (once per start, before any replica
    process builds: with ``GRPC_PROCESSES`` the supervisor runs this and its workers do not)."""
    if settings.status_migrate_on_start:
        await upgrade(settings.async_database_url)


async def create_app(settings: StatusSettings, *, migrate: bool = True) -> StatusApp:
    """Connect, migrate (unless ``migrate=False``: done already), and assemble (not started: call ``start()``)."""
    database_url = settings.async_database_url
    if migrate:
        await prepare_database(settings)
    redis = create_redis(settings.redis_url, connect_timeout=0.5, socket_timeout=5.0, client_name="status")
    engine = create_engine(database_url)
    store = RedisStore(
        redis, live_ttl_seconds=settings.status_live_ttl_seconds, stream_maxlen=settings.status_stream_maxlen
    )
    database = StatusDatabase(engine)
    hub = WatchHub(settings.status_watch_queue_size)
    tasks = TaskSupervisor()
    follower = Follower(store, hub, live_ttl_seconds=settings.status_live_ttl_seconds, tasks=tasks)
    reader = StatusReader(store, follower, database, stale_after_seconds=settings.status_stale_after_seconds)
    service = StatusCore(
        store,
        database,
        follower,
        hub,
        reader,
        request_resync=functools.partial(request_asterisk_resync, settings, settings.status_resync_timeout_seconds),
        watch_heartbeat_seconds=settings.status_watch_heartbeat_seconds,
        ingest_read_ahead_bytes=settings.status_ingest_read_ahead_bytes,
        tasks=tasks,
    )
    return StatusApp(settings, redis, engine, service, StatusServicer(service))
