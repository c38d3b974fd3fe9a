"""The notify metrics as Prometheus scrapes them from the service's and the workers' /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from switchboard.notify.v1 import notify_pb2

from devsupport.auth import aio_channel
from devsupport.ports import free_port
from devsupport.procs import SpawnService
from devsupport.waiting import wait_until
from tests.notify.harness import Providers, notify_settings, remote_notify

SERVICE = "switchboard.notify.v1.NotifyService"
DELIVERED = notify_pb2.DELIVERY_STATE_DELIVERED
pytestmark = pytest.mark.slow


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint: (name, sorted labels) -> value."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.timeout(180)
async def test_deliveries_outcomes_retry_after_and_queue_sizes_are_scraped(
    spawn: SpawnService, redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    settings = notify_settings(redis_url, tmp_path, providers)
    env = {**settings.worker_environment(), "NOTIFY_ADDR": settings.notify_addr}
    ports = {"service": free_port(), "notifications": free_port(), "telegram": free_port()}
    service = spawn("services.notify", env={**env, "METRICS_PORT": str(ports["service"])})
    spawn("services.notify.worker", env={**env, "METRICS_PORT": str(ports["notifications"])})
    spawn("services.notify.worker", "telegram", env={**env, "METRICS_PORT": str(ports["telegram"])})
    service.wait_serving(settings.notify_addr, SERVICE, timeout=60)
    bot = providers.bot
    bot.flood_ratio, bot.flood_retry_after = 1.0, 1  # the first send meets a 429 retry_after 1
    async with aio_channel(settings.notify_addr) as channel:
        notify = remote_notify(settings, channel, providers)
        telegram = await notify.send(
            channel=notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM,
            recipient=notify_pb2.Recipient(telegram_chat_id="42"),
            body="hello",
        )

        async def rate_limited() -> bool:
            return bot.too_many >= 1

        await wait_until(rate_limited, within=60, what="the 429")
        bot.flood_ratio = 0.0
        gone = await notify.send(
            channel=notify_pb2.NOTIFICATION_CHANNEL_EMAIL,
            recipient=notify_pb2.Recipient(email="ok@example.com"),
            subject="s",
            body="b",
        )
        assert (await notify.settled(telegram, within=60)).state == DELIVERED
        assert (await notify.settled(gone, within=60)).state == DELIVERED

    telegram_samples = await scrape(ports["telegram"])
    assert telegram_samples[("notifications_total", (("channel", "telegram"), ("outcome", "rate_limited")))] == 1
    assert telegram_samples[("notifications_total", (("channel", "telegram"), ("outcome", "delivered")))] == 1
    assert telegram_samples[("telegram_retry_after_seconds_total", ())] == 1
    email_samples = await scrape(ports["notifications"])
    assert email_samples[("notifications_total", (("channel", "email"), ("outcome", "delivered")))] == 1

    async def sizes_published() -> bool:
        samples = await scrape(ports["service"])
        return all(
            ("notification_queue_size", (("queue", q),)) in samples for q in ("notifications", "notifications_telegram")
        )

    await wait_until(sizes_published, within=20, what="the queue size gauges")
    samples = await scrape(ports["service"])
    assert samples[("notification_queue_size", (("queue", "notifications"),))] == 0
