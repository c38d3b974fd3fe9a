"""A Telegram worker killed with SIGKILL mid-run: nothing is lost, and a message reaches the
provider twice only if it was in flight (leased by the killed worker) at the kill."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis
from switchboard.notify.v1 import notify_pb2

from devsupport.auth import aio_channel
from devsupport.procs import SpawnService
from devsupport.waiting import wait_until
from runtime.queue import QueueAdmin
from runtime.queue.keys import QueueKeys, running_attempt
from services.notify.queues import TELEGRAM
from tests.notify.harness import Providers, notify_settings, remote_notify

SERVICE = "switchboard.notify.v1.NotifyService"
MESSAGES = 80
KILL_AFTER = 20
pytestmark = pytest.mark.slow


async def leased_by(redis: Redis, pid: int) -> set[str]:
    """Ids of the Telegram jobs the worker process ``pid`` holds a lease on."""
    keys = QueueKeys(TELEGRAM)
    leases: dict[bytes, bytes] = await redis.hgetall(keys.lease)  # type: ignore[misc]
    holders = {job_id.decode(): running_attempt(lease)[0] for job_id, lease in leases.items() if lease}
    return {job_id for job_id, holder in holders.items() if f":{pid}:" in holder}


@pytest.mark.timeout(240)
async def test_a_worker_killed_mid_run_loses_nothing_and_resends_only_what_it_held(
    spawn: SpawnService, redis_url: str, tmp_path: Path, providers: Providers, redis: Redis
) -> None:
    settings = notify_settings(
        redis_url, tmp_path, providers, telegram_rate_per_second=10, notify_lease_s=2.0, notify_backoff_base_s=0.2
    )
    env = {**settings.worker_environment(), "NOTIFY_ADDR": settings.notify_addr, "METRICS_PORT": "-1"}
    service = spawn("services.notify", env=env)
    victim, survivor = (spawn("services.notify.worker", "telegram", env=env) for _ in range(2))
    service.wait_serving(settings.notify_addr, SERVICE, timeout=60)
    admin = QueueAdmin(TELEGRAM, redis)

    async def both_workers_up() -> bool:
        return len(await admin.workers()) == 2

    await wait_until(both_workers_up, within=60, what="both Telegram workers' heartbeats")
    batch = [
        notify_pb2.Notification(
            channel=notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM,
            recipient=notify_pb2.Recipient(telegram_chat_id=str(7000 + n)),
            body=f"drill {n}",
        )
        for n in range(MESSAGES)
    ]
    bot = providers.bot
    async with aio_channel(settings.notify_addr) as channel:
        notify = remote_notify(settings, channel, providers)
        reply = await notify.stub.SendBatch(notify_pb2.SendBatchRequest(notifications=batch), timeout=60)
        id_of = {f"drill {r.index}": r.notification_id for r in reply.results}

        await wait_until(lambda: len(bot.accepted) >= KILL_AFTER, within=120, what=f"{KILL_AFTER} messages sent")
        victim.send_signal(signal.SIGSTOP)  # frozen: what it holds now is what it holds at the kill
        in_flight = await leased_by(redis, victim.pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait_exit(timeout=10)
        assert len(bot.accepted) < MESSAGES, "the kill came after the run: nothing was in the middle of it"

        for nid in id_of.values():
            assert (await notify.settled(nid, within=120)).state == notify_pb2.DELIVERY_STATE_DELIVERED

    texts = Counter(m["text"] for m in bot.accepted)
    assert set(texts) == set(id_of), "lost: " + ", ".join(sorted(set(id_of) - set(texts)))
    sent_twice = {id_of[text] for text, n in texts.items() if n > 1}
    assert sent_twice <= in_flight
    assert all(n <= 2 for n in texts.values())
    assert bot.too_many == 0
    assert survivor.poll() is None
