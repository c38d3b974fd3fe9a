"""``notification_queue_switches_total{from,to}``: each time sending switches between Redis and the
disk spool, counted by the notify service's queue watcher."""

from __future__ import annotations

from pathlib import Path

import pytest
from switchboard.notify.v1 import notify_pb2

from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from services.notify.metrics import QUEUE_SWITCHES
from tests.notify.harness import Providers, notify_settings, running_notify

pytestmark = pytest.mark.slow


def switches(source: str, target: str) -> float:
    return float(QUEUE_SWITCHES.labels(source, target)._value.get())


@pytest.mark.timeout(120)
async def test_an_outage_counts_one_switch_to_the_spool_and_one_back_per_queue_that_spooled(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    settings = notify_settings(redis_url, tmp_path, providers)
    async with running_notify(settings, providers, workers=False) as notify:
        before = switches("redis", "spool"), switches("spool", "redis")
        redis_server.stop()
        try:
            await notify.send(
                channel=notify_pb2.NOTIFICATION_CHANNEL_EMAIL,
                recipient=notify_pb2.Recipient(email="outage@example.com"),
                subject="s",
                body="sent while Redis is down",
            )
            assert notify.app.queues["notifications"].health() == "degraded"
            await wait_until(
                lambda: switches("redis", "spool") == before[0] + 1, within=30, what="the switch to the spool"
            )
            assert switches("spool", "redis") == before[1]
        finally:
            redis_server.start()
        await wait_until(
            lambda: switches("spool", "redis") == before[1] + 1, within=60, what="the switch back to Redis"
        )
        # Only the notifications queue spooled: the Telegram queue never switched.
        assert switches("redis", "spool") == before[0] + 1
