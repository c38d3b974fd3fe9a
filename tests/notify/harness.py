"""The notify tests' building blocks: the local providers (SMTP sink, Bot API, push service, SMS
API) on loopback, and the notify service on a loopback gRPC server with in-process workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import httpx
from redis.asyncio import Redis
from switchboard.notify.v1 import notify_pb2, notify_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import free_port, on_any_port
from devsupport.waiting import wait_until
from runtime.grpc_server import GrpcServer
from runtime.queue import Worker
from services.notify.app import NotifyApp
from services.notify.local.http import RunningServer
from services.notify.local.push_service import PushState
from services.notify.local.sms_api import SmsState
from services.notify.local.smtp_sink import SmtpSink
from services.notify.local.telegram_api import BotApiState
from services.notify.queues import queue_specs
from services.notify.settings import NotifySettings
from services.notify.vapid import generate_private_key
from services.notify.worker import WorkerResources

BOT_TOKEN = "123456:local-test-token"
SMS_SID, SMS_TOKEN = "ACtest", "sms-secret"


@dataclass
class Providers:
    smtp: SmtpSink
    bot: BotApiState
    bot_server: RunningServer
    push: PushState
    push_server: RunningServer
    sms: SmsState
    sms_server: RunningServer

    async def new_push_subscription(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{self.push_server.url}/subscriptions")
        return dict(response.json())


def notify_settings(redis_url: str, data_dir: Path, providers: Providers, **overrides: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'notify.db'}",
        "notify_addr": f"127.0.0.1:{free_port()}",
        "log_level": "WARNING",
        "notify_backoff_base_s": 0.05,
        "notify_backoff_cap_s": 0.2,
        "notify_lease_s": 1.0,
        "notify_provider_timeout_s": 3.0,
        "smtp_host": "127.0.0.1",
        "smtp_port": providers.smtp.port,
        "telegram_bot_token": BOT_TOKEN,
        "telegram_api_url": providers.bot_server.url,
        "vapid_private_key": generate_private_key(),
        "vapid_subject": "mailto:ops@switchboard.example",
        "sms_api_url": providers.sms_server.url,
        "sms_account_sid": SMS_SID,
        "sms_auth_token": SMS_TOKEN,
        "sms_from": "+15550001111",
        **overrides,
    }
    return NotifySettings(**values)


@dataclass
class Notify:
    settings: NotifySettings
    app: NotifyApp
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: notify_pb2_grpc.NotifyServiceAsyncStub
    providers: Providers

    async def send(self, **fields: Any) -> str:
        response = await self.stub.Send(
            notify_pb2.SendRequest(notification=notify_pb2.Notification(**fields)), timeout=10
        )
        return str(response.notification_id)

    async def status(self, notification_id: str) -> notify_pb2.DeliveryStatus:
        request = notify_pb2.GetDeliveryStatusRequest(notification_id=notification_id)
        status: notify_pb2.DeliveryStatus = await self.stub.GetDeliveryStatus(request, timeout=10)
        return status

    async def settled(self, notification_id: str, within: float = 30.0) -> notify_pb2.DeliveryStatus:
        """The status once the notification is delivered or failed."""
        finished = (notify_pb2.DELIVERY_STATE_DELIVERED, notify_pb2.DELIVERY_STATE_FAILED)

        async def done() -> bool:
            return (await self.status(notification_id)).state in finished

        await wait_until(done, within=within, what=f"notification {notification_id} to finish")
        return await self.status(notification_id)


def remote_notify(settings: NotifySettings, channel: grpc.aio.Channel, providers: Providers) -> Notify:
    """A :class:`Notify` over a channel to a notify process (no in-process app or server)."""
    return Notify(settings, None, None, channel, notify_pb2_grpc.NotifyServiceStub(channel), providers)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_notify(
    settings: NotifySettings, providers: Providers, *, workers: bool = True
) -> AsyncIterator[Notify]:
    """The notify service in this process, on a port the OS picks as it binds (``settings.notify_addr``
    is for a notify process): the yielded ``Notify.settings`` name the bound address."""
    app = await NotifyApp.create(settings)
    server = GrpcServer(
        on_any_port(app.grpc_service()),
        authenticator=authenticator_for_tests(),
        grace_seconds=0.5,
        health_interval_seconds=0.2,
    )
    address = f"127.0.0.1:{await server.start()}"
    settings = settings.model_copy(update={"notify_addr": address})
    channel = aio_channel(address)
    running: list[tuple[Worker, asyncio.Task[None], WorkerResources]] = []
    if workers:
        redis = Redis.from_url(settings.redis_url)
        for spec in queue_specs(settings).values():
            resources = WorkerResources(settings, spec)
            worker = Worker(spec, redis, shared=resources.shared())
            running.append((worker, asyncio.create_task(worker.run()), resources))
    try:
        yield Notify(settings, app, server, channel, notify_pb2_grpc.NotifyServiceStub(channel), providers)
    finally:
        # Each step in a finally: a worker that fails to stop must not leave the rest open.
        try:
            for worker, task, resources in running:
                try:
                    worker.stop()
                    await asyncio.wait_for(task, 20)
                finally:
                    await resources.close()
        finally:
            try:
                if running:
                    await redis.aclose()
                await channel.close()
            finally:
                await server.stop()
