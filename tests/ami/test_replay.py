"""The replay server serves recordings faithfully to the real client over TCP."""

from __future__ import annotations

import asyncio

import pytest

from services.ami_ingest.ami.client import AmiClient
from services.ami_ingest.ami.transport import ActionResult
from services.ami_ingest.simulator.recording import LiveStep, load_recording, parse_recording
from services.ami_ingest.simulator.replay import ReplayServer

from ._client_support import client_config, fixture, running_client

SESSIONS = [
    ("login_and_static", "plain", "switchboard"),
    ("members_lifecycle", "plain", "switchboard"),
    ("calls_basic", "plain", "switchboard"),
    ("quirks", "plain", "switchboard"),
    ("login_md5_readonly", "md5", "monitor"),
    ("busy_hour_small", "plain", "switchboard"),
]


class Resync:
    def __init__(self) -> None:
        self.results: list[dict[str, ActionResult]] = []
        self.done = asyncio.Event()

    async def __call__(self, client: AmiClient) -> None:
        queues = await client.send_action("QueueStatus")
        channels = await client.send_action("CoreShowChannels")
        self.results.append({"QueueStatus": queues, "CoreShowChannels": channels})
        self.done.set()


@pytest.mark.parametrize(("name", "auth", "user"), SESSIONS)
async def test_every_recorded_live_event_arrives_once_and_no_answer_leaks(name: str, auth: str, user: str) -> None:
    recording = load_recording(fixture(name))
    expected = [step.frame for segment in recording.segments for step in segment.steps if isinstance(step, LiveStep)]
    resync = Resync()
    async with ReplayServer(recording) as server:
        config = client_config(server.port, auth=auth, username=user)
        async with running_client(config, resync) as (_client, events):
            await events.wait_for(lambda evs: len(evs) >= len(expected), limit=30)
            await resync.done.wait()
            assert server.finished.is_set()
    assert [e.frame for e in events.events] == expected
    initial = resync.results[0]["QueueStatus"]
    sidecar_id = recording.sidecar["sync_actions"]["initial"]["QueueStatus"]
    assert all(item.action_id == initial.action_id != sidecar_id for item in initial.items)
    for event in events.events:  # recorded answers (lists, Pong, Command output) stay out
        assert event.frame.response is None or event.frame.event is not None
        assert event.frame.get("Privilege") is not None or event.frame.event == "UserEvent"


async def test_queue_status_after_the_end_answers_with_the_recorded_final_truth() -> None:
    recording = load_recording(fixture("calls_basic"))
    final_id = recording.sidecar["sync_actions"]["final"]["QueueStatus"]
    final = next(answer for _, answer in recording.segments[0].lists if answer.action_id == final_id)
    async with (
        ReplayServer(recording, sync_timeout=0.1) as server,
        running_client(client_config(server.port)) as (client, _),
    ):
        async with asyncio.timeout(10):
            await server.finished.wait()
        result = await client.send_action("QueueStatus")
        sales = await client.send_action("QueueStatus", {"Queue": "sales"})
    assert [i.headers[:-1] for i in result.items] == [i.headers[:-1] for i in final.items]
    assert {i.get("Queue") for i in sales.items} == {"sales"}
    assert sales.complete is not None
    assert sales.complete.get("ListItems") == str(len(sales.items))


async def test_recording_with_two_connections_is_served_as_two_with_a_resync_each() -> None:
    first = fixture("members_lifecycle").read_bytes()
    cut = first[: first.rindex(b"Event: ")] + b"Event: QueueMemberStatus\r\nQueue: sal"
    data = cut + fixture("login_and_static").read_bytes()
    recording = parse_recording(data)
    assert len(recording.segments) == 2
    assert recording.segments[0].tail.startswith(b"Event: QueueMemberStatus")
    resync = Resync()
    async with (
        ReplayServer(recording) as server,
        running_client(client_config(server.port), resync) as (client, events),
    ):
        async with asyncio.timeout(10):
            await server.finished.wait()
            while len(resync.results) < 2:
                resync.done.clear()
                await resync.done.wait()
        await events.wait_for(lambda evs: evs[-1].frame.event == "SuccessfulAuth" and evs[-1].connection == 2)
    assert client.connection_number == 2
    assert server.segments_done == 2
    connections = {e.connection for e in events.events}
    assert connections == {1, 2}
    assert all(e.frame.get("Queue") != "sal" for e in events.events)
    assert len(resync.results[1]["QueueStatus"].items) == 13


async def test_paced_replay_delivers_the_same_events_in_order() -> None:
    recording = load_recording(fixture("login_and_static"))
    server = ReplayServer(recording, speed=50.0, fallback_rate=200.0)
    async with server, running_client(client_config(server.port), Resync()) as (_client, events):
        await events.wait_for(lambda evs: len(evs) >= 2)
    assert events.names() == ["FullyBooted", "SuccessfulAuth"]


async def test_a_repeated_replay_streams_the_live_events_that_many_times_after_one_resync() -> None:
    recording = load_recording(fixture("members_lifecycle"))
    expected = [step.frame for step in recording.segments[0].steps if isinstance(step, LiveStep)]
    resync = Resync()
    server = ReplayServer(recording, repeat=3)
    async with server, running_client(client_config(server.port), resync) as (_client, events):
        await events.wait_for(lambda evs: len(evs) >= 3 * len(expected), limit=30)
        async with asyncio.timeout(10):
            await server.finished.wait()
    assert [e.frame for e in events.events] == expected * 3
    assert len(resync.results) == 1


def test_a_replay_repeated_less_than_once_is_refused() -> None:
    with pytest.raises(ValueError, match="repeat must be at least 1"):
        ReplayServer(load_recording(fixture("login_and_static")), repeat=0)


async def test_a_paced_replay_repeats_its_live_events_too() -> None:
    recording = load_recording(fixture("login_and_static"))
    server = ReplayServer(recording, speed=50.0, fallback_rate=200.0, repeat=2)
    async with server, running_client(client_config(server.port), Resync()) as (_client, events):
        await events.wait_for(lambda evs: len(evs) >= 4)
    assert events.names() == ["FullyBooted", "SuccessfulAuth"] * 2
