"""AmiClient over real TCP: login, correlation, keepalive, reconnect, bad input, secrecy."""

from __future__ import annotations

import asyncio
import time

import pytest
import structlog

from devsupport.waiting import wait_until
from services.ami_ingest.ami.client import AmiClient, AmiEvent
from services.ami_ingest.ami.errors import AmiActionError, AmiAuthError
from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.transport import AmiTransport
from services.ami_ingest.simulator.protocol import encode_frame, reply
from services.ami_ingest.simulator.recording import load_recording
from services.ami_ingest.simulator.replay import ReplayServer

from ._client_support import SECRET, ScriptedAmi, client_config, fast_retry, fixture, running_client


async def test_plain_login_then_resync_lists_are_answers_not_events() -> None:
    async with ReplayServer(load_recording(fixture("login_and_static"))) as server:
        answers = {}
        resynced = asyncio.Event()

        async def resync(client: AmiClient) -> None:
            answers["queues"] = await client.send_action("QueueStatus")
            answers["channels"] = await client.send_action("CoreShowChannels")
            resynced.set()

        async with running_client(client_config(server.port), resync) as (client, events):
            await events.wait_for(lambda evs: len(evs) >= 2)
            async with asyncio.timeout(5):
                await resynced.wait()
            assert events.names() == ["FullyBooted", "SuccessfulAuth"]
            queues = answers["queues"]
            assert queues.ok
            assert [f.event for f in queues.items].count("QueueMember") == 9
            assert queues.complete is not None
            assert queues.complete.event == "QueueStatusComplete"
            assert queues.action_id.startswith(client.config.action_id_prefix)
            assert answers["channels"].items == ()
            assert client.stats["logins"] == 1


async def test_md5_login_as_read_only_user_and_refused_action_is_typed() -> None:
    async with ReplayServer(load_recording(fixture("login_md5_readonly"))) as server:
        config = client_config(server.port, username="monitor", auth="md5")
        async with running_client(config) as (client, _events):
            async with asyncio.timeout(5):
                await client.wait_connected()
            result = await client.send_action("Originate", {"Channel": "Local/sales@callers"})
            assert not result.ok
            assert result.message == "Permission denied"
            with pytest.raises(AmiActionError, match="Permission denied"):
                result.raise_for_error()
            pong = await client.send_action("Ping")
            assert pong.response.get("Ping") == "Pong"


@pytest.mark.parametrize(
    ("name", "auth"),
    [("login_failure", "plain"), ("login_failure_md5", "md5"), ("login_failure_unknown_user", "plain")],
)
async def test_refused_login_is_typed_and_retried_with_growing_backoff(name: str, auth: str) -> None:
    with structlog.testing.capture_logs() as logs:
        async with ReplayServer(load_recording(fixture(name))) as server:
            config = client_config(server.port, auth=auth, retry=fast_retry(base=0.05, cap=1.0))
            started = time.monotonic()
            async with running_client(config) as (client, _events):
                await wait_until(lambda: client.stats["login_failures"] >= 4, within=10, what="four refused logins")
                fourth_after = time.monotonic() - started
                failures, connections = client.stats["login_failures"], server.stats["connections"]
                assert not client.connected
                # Each new attempt clears last_error while it connects: wait for a refusal.
                await wait_until(
                    lambda: isinstance(client.last_error, AmiAuthError), within=5, what="a refused login recorded"
                )
    # Between the first and the fourth attempt come waits of 0.05, 0.1 and 0.2 s: a lower bound,
    # which a loaded machine only lengthens. A hot loop, or a fixed 0.05 s, is far quicker.
    assert fourth_after >= 0.05 + 0.1 + 0.2
    assert connections - failures in (0, 1)  # every connection a refused login (the last may be in flight)
    failed = [entry for entry in logs if entry["event"] == "ami login failed"]
    assert failed, logs
    assert (failed[0]["username"], failed[0]["reason"]) == ("switchboard", "Authentication failed")
    assert SECRET not in str(logs)


async def test_secret_never_appears_in_logs_or_reprs() -> None:
    with structlog.testing.capture_logs() as logs:
        async with ReplayServer(load_recording(fixture("login_and_static"))) as server:
            config = client_config(server.port)
            async with running_client(config) as (client, _events):
                async with asyncio.timeout(5):
                    await client.wait_connected()
                await client.send_action("Ping")
    assert any(entry["event"] == "ami logged in" for entry in logs)
    assert SECRET not in str(logs)
    assert SECRET not in repr(config)
    assert SECRET not in str(client.stats)


async def test_actions_before_login_are_denied_and_connection_stays_open() -> None:
    async with ReplayServer(load_recording(fixture("login_required"))) as server:
        transport = await AmiTransport.open(
            "127.0.0.1",
            server.port,
            on_event=lambda seq, frame: None,
            next_seq=iter(range(1, 999)).__next__,
            action_id_prefix="t",
        )
        try:
            denied = await transport.send_action("QueueStatus")
            assert (denied.ok, denied.message) == (False, "Permission denied")
            login = await transport.send_action("Login", {"Username": "switchboard", "Secret": SECRET})
            assert login.ok
            assert (await transport.send_action("Ping")).ok
        finally:
            await transport.close()


async def test_list_items_route_to_the_action_and_interleaved_live_events_keep_their_place() -> None:
    async with ScriptedAmi() as server:

        def answer(action: Frame) -> bytes:
            aid = action.action_id or ""
            frames = [
                reply(action, "Success", ("EventList", "start"), ("Message", "Queue status will follow")),
                [("Event", "QueueParams"), ("Queue", "sales"), ("ActionID", aid)],
                [("Event", "UserEvent"), ("UserEvent", "Probe"), ("ActionID", "other-session-7")],
                [("Event", "QueueMember"), ("Queue", "sales"), ("Location", "Local/1001@agents"), ("ActionID", aid)],
                [("Event", "QueueStatusComplete"), ("ActionID", aid), ("EventList", "Complete")],
                [("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success")],
            ]
            return b"".join(encode_frame(f) for f in frames)

        server.on_action = answer
        async with running_client(client_config(server.port)) as (client, events):
            async with asyncio.timeout(5):
                await client.wait_connected()
            result = await client.send_action("QueueStatus")
            await events.wait_for(lambda evs: len(evs) >= 2)
            await events.stop()
    assert [f.event for f in result.items] == ["QueueParams", "QueueMember"]
    live: dict[str | None, AmiEvent] = {}
    for event in events.events:
        live.setdefault(event.frame.event, event)
    assert set(live) == {"UserEvent", "OriginateResponse"}
    assert result.item_seqs[0] < live["UserEvent"].seq < result.item_seqs[1] < result.end_seq
    assert live["OriginateResponse"].seq > result.end_seq


async def test_old_response_follows_command_output_is_one_answer() -> None:
    async with ScriptedAmi() as server:
        server.on_action = lambda action: (
            f"Response: Follows\r\nPrivilege: Command\r\nActionID: {action.action_id}\r\n"
            "line one\n\nline three\n--END COMMAND--\r\n\r\n"
        ).encode()
        async with running_client(client_config(server.port)) as (client, _events):
            async with asyncio.timeout(5):
                await client.wait_connected()
            result = await client.send_action("Command", {"Command": "core show uptime"})
    assert result.ok
    assert result.response.get_all("Output") == ["line one", "", "line three"]


async def test_missing_pong_declares_connection_dead_and_reconnects() -> None:
    connects = 0
    reconnected = asyncio.Event()

    async def count(client: AmiClient) -> None:
        nonlocal connects
        connects += 1
        if connects == 2:
            reconnected.set()

    async with ScriptedAmi(pong=False) as server:
        config = client_config(server.port, ping_interval=0.05, ping_timeout=0.1)
        async with running_client(config, count) as (client, _events):
            async with asyncio.timeout(5):
                await reconnected.wait()
            assert client.stats["ping_timeouts"] >= 1
    assert server.connections >= 2


async def test_server_dropping_the_connection_triggers_reconnect_and_on_connect_again() -> None:
    connected: list[int] = []
    reconnected = asyncio.Event()

    async def hook(client: AmiClient) -> None:
        connected.append(client.connection_number)
        if len(connected) == 2:
            reconnected.set()

    async with ScriptedAmi() as server, running_client(client_config(server.port), hook) as (client, events):
        async with asyncio.timeout(5):
            await client.wait_connected()
            await server.drop()
            await reconnected.wait()
        await server.push(encode_frame([("Event", "FullyBooted"), ("Privilege", "system,all")]))
        await events.wait_for(lambda evs: len(evs) == 1)
    assert connected == [1, 2]
    assert events.events[0].connection == 2
    assert client.stats["disconnects"] == 1


async def test_frame_cut_by_disconnect_does_not_leak_into_next_connection() -> None:
    async with ScriptedAmi() as server, running_client(client_config(server.port)) as (client, events):
        async with asyncio.timeout(5):
            await client.wait_connected()
        await server.push(b"Event: Hangup\r\nChannel: Local/cut-000;1\r\nUnique")

        def cut_frame_buffered() -> bool:
            transport = client._transport
            return transport is not None and transport.parser.pending_bytes > 0

        await wait_until(cut_frame_buffered, within=5, what="the client holds the cut frame's first bytes")
        await server.drop()
        async with asyncio.timeout(5):
            await server.connected.wait()
        await server.push(b"Event: Newchannel\r\nChannel: Local/next-001;1\r\n\r\n")
        await events.wait_for(lambda evs: len(evs) == 1)
    (only,) = events.events
    assert only.frame.headers == (("Event", "Newchannel"), ("Channel", "Local/next-001;1"))


async def test_malformed_bytes_are_counted_and_connection_survives() -> None:
    async with ScriptedAmi() as server, running_client(client_config(server.port)) as (client, events):
        async with asyncio.timeout(5):
            await client.wait_connected()
        await server.push(b"garbage without colon\r\n\r\n\x00\x01\xff binary: x\r\n\r\n")
        await server.push(b"Event: Newstate\r\nChannel: Local/1001@agents-1;1\r\n\r\n")
        await events.wait_for(lambda evs: len(evs) == 1)
        assert sum(client.parser_malformed.values()) >= 2
        assert (await client.send_action("Ping")).ok
        assert client.stats["connects"] == 1
    assert events.names() == ["Newstate"]


async def test_a_read_of_live_events_keeps_wire_order_and_consecutive_sequence_numbers() -> None:
    async with ScriptedAmi() as server, running_client(client_config(server.port)) as (client, events):
        async with asyncio.timeout(5):
            await client.wait_connected()
        burst = b"".join(encode_frame([("Event", "VarSet"), ("Variable", f"V{i}")]) for i in range(200))
        await server.push(burst)
        await events.wait_for(lambda evs: len(evs) == 200)
    assert [e.frame.get("Variable") for e in events.events] == [f"V{i}" for i in range(200)]
    seqs = [e.seq for e in events.events]
    assert seqs == list(range(seqs[0], seqs[0] + 200))
    assert {e.connection for e in events.events} == {1}


async def test_a_stray_response_among_live_events_is_counted_and_the_events_still_arrive_in_order() -> None:
    async with ScriptedAmi() as server, running_client(client_config(server.port)) as (client, events):
        async with asyncio.timeout(5):
            await client.wait_connected()
        stray = encode_frame([("Response", "Success"), ("ActionID", "not-ours-1")])
        await server.push(encode_frame([("Event", "A")]) + stray + encode_frame([("Event", "B")]))
        await events.wait_for(lambda evs: len(evs) == 2)
        transport = client._transport
        assert transport is not None
        assert transport.stats["unmatched_responses"] == 1
    assert events.names() == ["A", "B"]
    assert events.events[1].seq == events.events[0].seq + 2  # the response was numbered too
