"""The notify service and its two workers as real processes: serve, deliver, stop cleanly on SIGTERM."""

from __future__ import annotations

from pathlib import Path

import pytest
from switchboard.notify.v1 import notify_pb2

from devsupport.auth import aio_channel
from devsupport.procs import SpawnService, health_status, reflected_services
from tests.notify.harness import Providers, notify_settings, remote_notify

SERVICE = "switchboard.notify.v1.NotifyService"
pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
async def test_the_service_and_its_workers_deliver_and_stop_cleanly(
    spawn: SpawnService, redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    settings = notify_settings(redis_url, tmp_path, providers, log_level="INFO")
    env = {**settings.worker_environment(), "NOTIFY_ADDR": settings.notify_addr, "LOG_LEVEL": "INFO"}
    service = spawn("services.notify", env=env)
    workers = [spawn("services.notify.worker", env=env), spawn("services.notify.worker", "telegram", env=env)]
    service.wait_serving(settings.notify_addr, SERVICE, timeout=60)
    assert SERVICE in reflected_services(settings.notify_addr)
    assert health_status(settings.notify_addr, SERVICE) == "SERVING"
    async with aio_channel(settings.notify_addr) as channel:
        notify = remote_notify(settings, channel, providers)
        telegram = await notify.send(
            channel=notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM,
            recipient=notify_pb2.Recipient(telegram_chat_id="-100200"),
            body="queue sales: 5 waiting",
        )
        in_app = await notify.send(
            channel=notify_pb2.NOTIFICATION_CHANNEL_IN_APP, recipient=notify_pb2.Recipient(user_id="op-1"), body="hi"
        )
        assert (await notify.settled(telegram, within=60)).state == notify_pb2.DELIVERY_STATE_DELIVERED
        assert (await notify.settled(in_app, within=60)).state == notify_pb2.DELIVERY_STATE_DELIVERED
    assert [m["chat_id"] for m in providers.bot.accepted] == ["-100200"]
    for worker in workers:
        assert worker.stop() == 0
    assert service.stop() == 0
    assert "server stopped" in service.output()
