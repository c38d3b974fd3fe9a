"""Wiring of the queue admin: Redis clients, the registry directory, the event hub, the servicer."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from switchboard.queue.v1 import queue_pb2_grpc

from runtime.grpc_server import GrpcService
from runtime.queue import DiskSpool
from runtime.redis import create_redis, redis_health_check
from services.queue_admin.directory import QueueDirectory
from services.queue_admin.events import EventHub
from services.queue_admin.servicer import SCOPES, SERVICE_NAME, QueueAdminServicer
from services.queue_admin.settings import QueueAdminSettings

__all__ = ["QueueAdminApp", "build_service"]


@dataclass
class QueueAdminApp:
    settings: QueueAdminSettings
    redis: Redis
    events_redis: Redis
    directory: QueueDirectory
    hub: EventHub
    servicer: QueueAdminServicer

    @classmethod
    async def create(cls, settings: QueueAdminSettings) -> QueueAdminApp:
        redis = create_redis(settings.redis_url, client_name="queue_admin")
        # Pub/sub blocks on purpose: no socket timeout on the events connection.
        events_redis = create_redis(settings.redis_url, socket_timeout=None, client_name="queue_admin_events")
        directory = QueueDirectory(redis, spool=DiskSpool(settings.spool_path))
        await directory.start()
        hub = EventHub(events_redis, buffer=settings.queue_admin_watch_buffer)
        return cls(settings, redis, events_redis, directory, hub, QueueAdminServicer(directory, hub, redis))

    def grpc_service(self) -> GrpcService:
        return GrpcService(
            name="queue_admin",
            address=self.settings.queue_admin_addr,
            register=lambda server: queue_pb2_grpc.add_QueueAdminServicer_to_server(self.servicer, server),
            service_names=[SERVICE_NAME],
            scopes=SCOPES,
            health_checks={"redis": redis_health_check(self.redis)},
            shutdown_hooks=[self.close],
            bind_host=self.settings.grpc_bind_host,
        )

    async def close(self) -> None:
        await self.hub.close()
        await self.directory.close()
        await self.events_redis.aclose()
        await self.redis.aclose()


async def build_service(settings: QueueAdminSettings) -> GrpcService:
    app = await QueueAdminApp.create(settings)
    return app.grpc_service()
