"""/api/queue-status/stream over a real uvicorn: SSE of WatchSnapshot, snapshot first, then changes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from switchboard.status.v1 import status_pb2 as S

from devsupport.auth import AUTH_HEADERS
from devsupport.waiting import wait_until
from tests.gateway.fake_status import FakeStatusService, operator
from tests.gateway.harness import Backends, LiveGateway
from tests.gateway.sse import events


async def test_stream_sends_the_snapshot_then_each_change(
    live_gateway: LiveGateway, fake_status: FakeStatusService
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", "/api/queue-status/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        first = await anext(stream)
        assert first.event == "snapshot"
        assert first.id == "1"
        snapshot = first.json()
        assert len(snapshot["operators"]) == 3
        assert snapshot["source"] == "redis"

        paused = operator("sales", "PJSIP/1002", "Bob", paused=True, paused_reason="Break")
        revision = fake_status.push(
            S.StateChange(operator_upserted=paused), S.StateChange(channel_removed="1700000000.1")
        )
        change = await anext(stream)
        assert change.event == "changes"
        assert change.id == str(revision)
        body = change.json()
        assert body["revision"] == revision
        assert body["replaceAll"] is False
        assert body["changes"][0]["kind"] == "operatorUpserted"
        assert body["changes"][0]["operator"]["pausedReason"] == "Break"
        assert body["changes"][1] == {"kind": "channelRemoved", "uniqueId": "1700000000.1"}


async def test_stream_passes_queue_filter_to_the_watch(
    live_gateway: LiveGateway, fake_status: FakeStatusService
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", "/api/queue-status/stream", params=[("queue", "sales"), ("queue", "vip")]) as response,
    ):
        assert (await anext(events(response))).event == "snapshot"
    watch = next(r for r in fake_status.requests if isinstance(r, S.WatchSnapshotRequest))
    assert list(watch.queue_names) == ["sales", "vip"]


async def test_client_going_away_closes_the_grpc_watch(
    live_gateway: LiveGateway, fake_status: FakeStatusService
) -> None:
    async with httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client:
        async with client.stream("GET", "/api/queue-status/stream") as response:
            assert (await anext(events(response))).event == "snapshot"
            assert fake_status.active_watches == 1
        async with asyncio.timeout(5):
            await fake_status.watch_ended.wait()
        assert fake_status.active_watches == 0
    # Changes after the client left go nowhere and break nothing.
    fake_status.push(S.StateChange(queue_removed="support"))
    async with httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client:
        snapshot = (await client.get("/api/queue-status/snapshot")).json()["data"]
    assert [q["name"] for q in snapshot["queues"]] == ["sales"]


async def test_status_service_dying_mid_stream_ends_it_with_an_error_event(
    live_gateway: LiveGateway, fake_status: FakeStatusService, backends: Backends
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", "/api/queue-status/stream") as response,
    ):
        stream = events(response)
        assert (await anext(stream)).event == "snapshot"
        await backends.status.stop()
        last = await anext(stream)
        assert last.event == "error"
        error = last.json()
        assert error["success"] is False
        assert error["error"]["code"] == "UNAVAILABLE", error


async def test_clients_of_one_filter_share_one_watch_and_each_gets_every_change(
    live_gateway: LiveGateway, fake_status: FakeStatusService
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", "/api/queue-status/stream") as first_response,
        client.stream("GET", "/api/queue-status/stream") as second_response,
    ):
        first, second = events(first_response), events(second_response)
        assert (await anext(first)).event == "snapshot"
        assert (await anext(second)).event == "snapshot"
        # The second client's own watch only fetched its snapshot: it is closed once joined.
        await wait_until(lambda: fake_status.active_watches == 1, within=5, what="the joining watch closed")
        revision = fake_status.push(S.StateChange(queue_removed="support"))
        for stream in (first, second):
            change = await anext(stream)
            assert (change.event, change.id) == ("changes", str(revision))
        assert fake_status.active_watches == 1


@pytest.mark.parametrize("queues", [(), (("queue", "sales"),)], ids=["every queue", "one queue"])
async def test_a_client_joining_a_running_stream_gets_its_snapshot_then_only_later_changes(
    live_gateway: LiveGateway, fake_status: FakeStatusService, queues: tuple[tuple[str, str], ...]
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", "/api/queue-status/stream", params=queues) as early_response,
    ):
        early = events(early_response)
        assert (await anext(early)).event == "snapshot"
        before = fake_status.push(S.StateChange(queue_removed="support"))
        assert (await anext(early)).id == str(before)
        async with client.stream("GET", "/api/queue-status/stream", params=queues) as late_response:
            late = events(late_response)
            snapshot = await anext(late)
            assert (snapshot.event, snapshot.id) == ("snapshot", str(before))
            assert [q["name"] for q in snapshot.json()["queues"]] == ["sales"]
            after = fake_status.push(S.StateChange(channel_removed="1700000000.1"))
            for stream in (early, late):
                change = await anext(stream)
                assert (change.event, change.id) == ("changes", str(after))
