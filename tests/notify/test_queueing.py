"""What ``POST /api/notifications`` leaves on the queue layer (priority, send time, the Telegram
chat's rate key) and what follows from it: a critical notification overtakes the waiting ones, a
transient failure shows ``retrying`` with its ``nextAttemptAt`` 2 s on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from devsupport.auth import AUTH_HEADERS
from devsupport.waiting import wait_until
from gateway.app import create_app
from gateway.settings import GatewaySettings
from runtime.queue import QueueAdmin, Worker
from runtime.queue.models import JobState
from services.notify.queues import NOTIFICATIONS, TELEGRAM, queue_specs
from services.notify.settings import NotifySettings
from services.notify.worker import WorkerResources
from tests.gateway.harness import LiveGateway
from tests.notify.harness import Notify, Providers, notify_settings, running_notify


@contextlib.asynccontextmanager
async def gateway_to(settings: NotifySettings, providers: Providers, *, workers: bool) -> AsyncIterator[Any]:
    """An HTTP client of a live gateway in front of notify (with or without its workers)."""
    async with running_notify(settings, providers, workers=workers) as notify:
        gateway = LiveGateway()
        try:
            await gateway.start(
                create_app(GatewaySettings(notify_addr=notify.settings.notify_addr, gateway_status_mirror=False))
            )
            async with httpx.AsyncClient(base_url=gateway.url, timeout=30, headers=AUTH_HEADERS) as http:
                yield http, notify
        finally:
            await gateway.stop()


async def post(http: httpx.AsyncClient, **body: Any) -> str:
    response = await http.post("/api/notifications", json=body)
    assert response.status_code == 202, response.text
    (nid,) = response.json()["data"]["notificationIds"]
    return str(nid)


@contextlib.asynccontextmanager
async def notifications_worker(notify: Notify, redis: Redis) -> AsyncIterator[None]:
    spec = queue_specs(notify.settings)[NOTIFICATIONS]
    resources = WorkerResources(notify.settings, spec)
    worker = Worker(spec, redis, shared=resources.shared())
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)
        await resources.close()


async def test_priorities_send_times_and_chats_reach_the_queue_as_the_issue_numbers_them(
    redis_url: str, tmp_path: Path, providers: Providers, redis: Redis
) -> None:
    settings = notify_settings(redis_url, tmp_path, providers)
    async with gateway_to(settings, providers, workers=False) as (http, _):
        by_priority = {}
        for priority in ("low", "normal", "high", "critical"):
            by_priority[priority] = await post(http, channel="email", to="a@example.com", text="t", priority=priority)
        plain = await post(http, channel="email", to="a@example.com", text="t")
        asked_ms = int(time.time() * 1000)
        delayed = await post(http, channel="email", to="a@example.com", text="t", delayMs=600_000)
        answered_ms = int(time.time() * 1000)
        send_at = int(time.time() * 1000) + 3_600_000
        later = await post(http, channel="sms", to="+4915112345678", text="t", sendAt=send_at)
        group = await post(http, channel="telegram", to="-100200", text="t")
        named = await post(http, channel="telegram", to="@ops_team", text="t")
        scheduled = (await http.get(f"/api/notifications/{later}")).json()["data"]
        waiting = (await http.get(f"/api/notifications/{plain}")).json()["data"]
        held_back = (await http.get(f"/api/notifications/{delayed}")).json()["data"]
    queue, telegram = QueueAdmin(NOTIFICATIONS, redis), QueueAdmin(TELEGRAM, redis)
    priorities = {p: (await queue.job(nid)).priority for p, nid in by_priority.items()}
    assert priorities == {"low": 0, "normal": 3, "high": 5, "critical": 10}
    assert (await queue.job(plain)).priority == 3
    assert (await queue.job(plain)).max_attempts == 5
    assert (await queue.job(later)).state is JobState.DELAYED
    assert (scheduled["state"], scheduled["nextAttemptAt"]) == ("scheduled", send_at)
    assert waiting["state"] == "queued"  # no worker runs: due, waiting on the queue
    assert (await queue.job(delayed)).state is JobState.DELAYED
    assert held_back["state"] == "scheduled"
    assert asked_ms + 600_000 <= held_back["nextAttemptAt"] <= answered_ms + 600_000
    assert [(await telegram.job(nid)).rate_key for nid in (group, named)] == ["chat:-100200", "chat:at.ops_team"]
    assert {group, named} == {job.job_id for job in (await telegram.jobs("waiting"))[0]}


async def test_a_critical_notification_overtakes_the_waiting_ones(
    redis_url: str, tmp_path: Path, providers: Providers, redis: Redis
) -> None:
    settings = notify_settings(redis_url, tmp_path, providers, notify_concurrency=1)
    async with gateway_to(settings, providers, workers=False) as (http, notify):
        for n in range(3):
            await post(http, channel="email", to="a@example.com", subject=f"low {n}", text="t", priority="low")
        await post(http, channel="email", to="a@example.com", subject="critical", text="t", priority="critical")
        async with notifications_worker(notify, redis):
            received = await asyncio.to_thread(providers.smtp.wait_for, 4)
    assert [mail.message["Subject"] for mail in received] == ["critical", "low 0", "low 1", "low 2"]


async def test_a_transient_failure_shows_retrying_with_the_next_attempt_two_seconds_on(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    # The service's own backoff (2 s base), not the fast one of the other tests.
    settings = notify_settings(redis_url, tmp_path, providers, notify_backoff_base_s=2.0, notify_backoff_cap_s=600)
    providers.smtp.handler.deferred.add("busy@example.com")
    async with gateway_to(settings, providers, workers=True) as (http, _):
        nid = await post(http, channel="email", to="busy@example.com", subject="s", text="t")

        async def status() -> dict[str, Any]:
            data: dict[str, Any] = (await http.get(f"/api/notifications/{nid}")).json()["data"]
            return data

        async def retrying() -> bool:
            return (await status())["state"] == "retrying"

        await wait_until(retrying, within=30, what="the first attempt to fail")
        first = await status()
        providers.smtp.handler.deferred.clear()

        async def delivered() -> bool:
            return (await status())["state"] == "delivered"

        await wait_until(delivered, within=30, what="the second attempt")
        final = await status()
    ((attempt, ok, error),) = [(a["attempt"], a["ok"], a["error"]) for a in first["attempts"]]
    assert (attempt, ok) == (1, False)
    assert error.startswith("smtp 451")
    assert first["lastError"] == error
    # Exponential backoff from 2 s with 10 % jitter: the first retry is due 1.8-2.2 s after the attempt.
    assert 1800 <= first["nextAttemptAt"] - first["attempts"][0]["attemptedAt"] <= 2200
    assert [(a["attempt"], a["ok"]) for a in final["attempts"]] == [(1, False), (2, True)]
    assert final["nextAttemptAt"] is None
    assert final["attempts"][1]["attemptedAt"] >= first["nextAttemptAt"] - 50
