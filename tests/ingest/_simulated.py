"""The simulated call center as the test's source of truth: a driver that ticks it, and its
resync answers (QueueStatus / CoreShowChannels) beside a status snapshot in one comparable shape."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from switchboard.status.v1 import status_pb2

from devsupport.waiting import wait_until
from services.ami_ingest.simulator.server import SimulatorServer
from tests.ingest.pipeline import Pipeline

Truth = dict[str, Any]


def model_truth(sim: SimulatorServer) -> Truth:
    """The picture the simulated Asterisk answers a resync with."""
    items = [dict(headers) for headers in sim.center.queue_status("truth")]
    channels = [dict(headers) for headers in sim.center.core_show_channels("truth")]
    members = [i for i in items if i["Event"] == "QueueMember"]
    return {
        "operators": {
            (m["Queue"], m["Location"]): (
                m["Name"],
                int(m["Status"]),
                m["Paused"] == "1",
                m["PausedReason"],
                m["InCall"] == "1",
            )
            for m in members
        },
        "queues": {i["Queue"]: i["Strategy"] for i in items if i["Event"] == "QueueParams"},
        "waiting": sorted((i["Queue"], int(i["Position"]), i["Channel"]) for i in items if i["Event"] == "QueueEntry"),
        "channels": {c["Channel"]: c["ChannelStateDesc"] for c in channels},
    }


def snapshot_truth(snapshot: status_pb2.Snapshot) -> Truth:
    return {
        "operators": {
            (o.queue_name, o.member_id): (o.member_name, o.status_code, o.paused, o.paused_reason, o.in_call)
            for o in snapshot.operators
        },
        "queues": {q.name: q.strategy for q in snapshot.queues},
        "waiting": sorted((q.name, c.position, c.channel) for q in snapshot.queues for c in q.callers),
        "channels": {c.channel_name: c.state for c in snapshot.channels},
    }


class Driver:
    """Ticks the call center every few ms (~100x real time) until paused."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self.running = asyncio.Event()
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await self.running.wait()
            self.sim.advance(1)
            self.ticks += 1
            await asyncio.sleep(0.005)  # the pace of the simulated clock (~200 simulated s per s)

    async def run_for(self, ticks: int) -> None:
        """Return once the call center has run ``ticks`` more simulated seconds (however long that
        takes on a loaded machine)."""
        target = self.ticks + ticks
        await wait_until(lambda: self.ticks >= target, within=30, what=f"{ticks} simulated seconds")

    @contextlib.asynccontextmanager
    async def ticking(self) -> AsyncIterator[Driver]:
        self.running.set()
        self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def pause_and_settle(self, pipeline: Pipeline) -> None:
        """Stop ticking; return once the ingest applied, sent and had acknowledged every event."""
        self.running.clear()
        client = pipeline.ingest.client
        assert client is not None, "the ingest runs an AMI client"
        assert client.connected, "the ingest is connected to the simulator"
        # The simulator answers on the connection that carries its events: once the answer is in,
        # so is every event written before it (queued in the client, which settle() waits out).
        await client.send_action("Ping", response_timeout=10)
        await pipeline.settle()
