"""The call-center simulator: deterministic, speaks AMI, and its resync answers equal its events."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter

import pytest
from pydantic import SecretStr

from devsupport.ports import free_port
from devsupport.waiting import wait_until
from services.ami_ingest.ami.client import AmiClient
from services.ami_ingest.ami.errors import AmiAuthError
from services.ami_ingest.ami.transport import ActionResult
from services.ami_ingest.convert import channel_pb
from services.ami_ingest.domain.model import Channel
from services.ami_ingest.simulator.__main__ import parse_args
from services.ami_ingest.simulator.callcenter import CallCenter
from services.ami_ingest.simulator.protocol import Credentials
from services.ami_ingest.simulator.server import SimulatorServer

from ._client_support import EventCollector, client_config, running_client

CREDS = Credentials("agent-board", "sim-secret")


def _run(seed: int, ticks: int = 600) -> list[list[tuple[str, str]]]:
    center = CallCenter(seed=seed, calls_per_minute=30)
    return [event for _ in range(ticks) for event in center.tick()]


def test_same_seed_gives_the_same_event_sequence() -> None:
    first = _run(7)
    assert first == _run(7)
    assert first != _run(8)
    names = Counter(event[0][1] for event in first)
    for name in ("QueueCallerJoin", "AgentCalled", "AgentConnect", "BridgeEnter", "AgentComplete", "Hangup"):
        assert names[name] > 0, name


@pytest.mark.parametrize("auth", ["plain", "md5"])
async def test_login_with_configured_credentials(auth: str) -> None:
    async with SimulatorServer(CallCenter(seed=1), credentials=CREDS, run_clock=False) as sim:
        config = client_config(sim.port, auth=auth, username=CREDS.username, secret=SecretStr(CREDS.secret))
        async with running_client(config) as (client, events):
            async with asyncio.timeout(5):
                await client.wait_connected()
            await events.wait_for(lambda evs: evs[0].frame.event == "FullyBooted")
            assert (await client.send_action("Ping")).response.get("Ping") == "Pong"


async def test_wrong_secret_is_refused() -> None:
    async with SimulatorServer(CallCenter(seed=1), credentials=CREDS, run_clock=False) as sim:
        config = client_config(sim.port, username=CREDS.username, secret=SecretStr("wrong"))
        async with running_client(config) as (client, _events):
            await wait_until(lambda: isinstance(client.last_error, AmiAuthError), within=5, what="the login refused")
            assert not client.connected


def _snapshot(queues: ActionResult, channels: ActionResult) -> tuple[dict[str, int], dict, set[str]]:
    waiting = {i.get("Queue") or "": int(i.get("Calls") or 0) for i in queues.items if i.event == "QueueParams"}
    members = {
        (i.get("Queue"), i.get("Location")): (i.get("Status"), i.get("Paused"), i.get("PausedReason"))
        for i in queues.items
        if i.event == "QueueMember"
    }
    return waiting, members, {i.get("Channel") or "" for i in channels.items}


async def test_resync_answer_equals_initial_snapshot_plus_emitted_events() -> None:
    snapshots: list[tuple[ActionResult, ActionResult]] = []
    resynced = asyncio.Event()

    async def resync(client: AmiClient) -> None:
        snapshots.append((await client.send_action("QueueStatus"), await client.send_action("CoreShowChannels")))
        resynced.set()

    center = CallCenter(seed=3, calls_per_minute=40)
    for _ in range(100):
        center.tick()  # calls already in progress before the client connects
    async with SimulatorServer(center, credentials=CREDS, run_clock=False) as sim:
        config = client_config(sim.port, username=CREDS.username, secret=SecretStr(CREDS.secret))
        async with running_client(config, resync) as (client, events):
            async with asyncio.timeout(5):
                await client.wait_connected()
                await resynced.wait()
            for _ in range(20):
                sim.advance(25)
                await asyncio.sleep(0)  # one loop turn: the client reads between bursts, as live
            queues = await client.send_action("QueueStatus")
            channels = await client.send_action("CoreShowChannels")
            await events.wait_for(lambda evs: bool(evs) and evs[-1].seq > 0)
        assert sim.events_emitted > 200
        waiting, members, chans = _snapshot(*snapshots[0])
        for event in events.events:
            if event.seq > queues.response_seq:
                break
            _apply(event.frame, waiting, members, chans)
        assert (waiting, members, chans) == _snapshot(queues, channels)


def _apply(frame, waiting: dict[str, int], members: dict, chans: set[str]) -> None:
    name = frame.event
    if name == "QueueCallerJoin":
        waiting[frame.get("Queue")] += 1
    elif name == "QueueCallerLeave":
        waiting[frame.get("Queue")] -= 1
    elif name in ("QueueMemberStatus", "QueueMemberPause"):
        key = (frame.get("Queue"), frame.get("Interface"))
        members[key] = (frame.get("Status"), frame.get("Paused"), frame.get("PausedReason"))
    elif name == "Newchannel":
        chans.add(frame.get("Channel"))
    elif name == "Hangup":
        chans.discard(frame.get("Channel"))


async def test_cli_serves_the_simulation_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.ami_ingest.simulator",
        "--port",
        str(port),
        "--seed",
        "5",
        "--speed",
        "40",
        "--calls-per-minute",
        "60",
        "--username",
        "cli-user",
        "--secret",
        "cli-secret",
        cwd=os.getcwd(),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(20):
            while b"ready on" not in await proc.stderr.readline():
                pass
        config = client_config(port, username="cli-user", secret=SecretStr("cli-secret"))
        client = AmiClient(config)
        client.start()
        events = EventCollector(client)
        try:
            await events.wait_for(lambda evs: any(e.frame.event == "QueueCallerJoin" for e in evs), limit=15)
        finally:
            await client.close()
            await events.stop()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_a_call_center_started_at_an_epoch_logs_its_members_in_then() -> None:
    center = CallCenter(seed=1, start_epoch=1_800_000_000)
    assert center.now == 1_800_000_000.0
    assert {m.login_time for m in center.members.values()} == {1_800_000_000}


def test_the_demo_feed_starts_its_clock_at_the_wall_clock_unless_told() -> None:
    assert parse_args(["--username", "u", "--secret", "s"]).start_epoch is None  # run() uses time.time()
    assert parse_args(["--username", "u", "--secret", "s", "--start-epoch", "1795431500"]).start_epoch == 1795431500


@pytest.mark.parametrize(("state", "code"), [("Down", 0), ("Ring", 4), ("Ringing", 5), ("Up", 6), ("Busy", 7)])
def test_a_channels_state_code_agrees_with_its_state(state: str, code: int) -> None:
    row = channel_pb(Channel(channel_name="PJSIP/1-0001", unique_id="1.1", state=state))
    assert (row.state, row.state_code) == (state, code)
