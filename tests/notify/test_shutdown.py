"""The notify service's shutdown closes its Redis clients and its database whatever its background
tasks do: a task slow to end once cancelled must not keep them open (under load one did, and the
next test failed on their ResourceWarnings); open in-app watches end as the server begins to stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from switchboard.notify.v1 import notify_pb2, notify_pb2_grpc

from devsupport.waiting import wait_until
from services.notify.app import NotifyApp
from tests.notify.harness import Providers, notify_settings, running_notify
from tests.support.stopping_server import served_with_a_long_grace, stop_ends_the_stream


async def test_a_background_task_slow_to_end_does_not_keep_the_redis_clients_open_after_shutdown(
    redis_url: str, tmp_path: Path, providers: Providers, redis: Redis
) -> None:
    release = asyncio.Event()

    async def slow_to_end() -> None:
        # Lets the first cancellation pass and ends when released or cancelled again: the shape of
        # the gauges task seen under load, still pending seconds after close() cancelled it.
        try:
            await release.wait()
        except asyncio.CancelledError:
            await release.wait()

    async def notify_clients() -> list[str]:
        return [c["name"] for c in await redis.client_list() if c["name"].startswith("notify")]

    straggler = asyncio.create_task(slow_to_end())
    try:
        async with running_notify(notify_settings(redis_url, tmp_path, providers), providers, workers=False) as notify:
            assert await notify_clients()
            notify.app.tasks.watch(straggler)
        # The server has stopped (its shutdown hooks have run or timed out): nothing of notify's is connected.

        async def all_closed() -> bool:
            return await notify_clients() == []

        await wait_until(all_closed, within=10, what="notify's Redis clients to disconnect")
    finally:
        release.set()
        await asyncio.gather(straggler, return_exceptions=True)


async def test_the_queue_gauges_stop_using_redis_once_close_begins_even_if_their_cancel_is_lost(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    counting = asyncio.Event()
    calls: list[str] = []

    async def counts_losing_the_cancel() -> None:
        # Stands in for a Redis call that turns the cancel into a connection error, which the
        # gauges loop suppresses: seen under load, its next call reconnected after close.
        calls.append("counts")
        counting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("connection closed while reading") from None

    async with running_notify(notify_settings(redis_url, tmp_path, providers), providers, workers=False) as notify:
        gauges = next(t for t in notify.app.tasks.running if t.get_name() == "notify-queue-gauges")
        for admin in notify.app.admins:
            admin.counts = counts_losing_the_cancel  # type: ignore[method-assign, assignment]
        await asyncio.wait_for(counting.wait(), 10)
    try:
        assert gauges.done()
        assert calls == ["counts"]  # no Redis call after the cancel
    finally:
        gauges.cancel()


async def test_a_stopping_server_ends_its_in_app_watch_streams_before_it_drains(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    app = await NotifyApp.create(notify_settings(redis_url, tmp_path, providers))
    async with served_with_a_long_grace(app.grpc_service()) as (server, channel):
        stub = notify_pb2_grpc.NotifyServiceStub(channel)
        stream = stub.WatchInApp(notify_pb2.WatchInAppRequest(user_id="op-1"))

        async def watching() -> bool:
            return "op-1" in app.core.hub._watchers

        await wait_until(watching, within=20, what="the watch to subscribe")
        await stop_ends_the_stream(server, stream)
