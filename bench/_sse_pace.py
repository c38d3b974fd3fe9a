"""The SSE fan-out's pace in one process: one shared watch (gateway.status_fanout) read while many
clients' writes cost the event loop time. The test of the fan-out's order and joined writes
(tests/gateway/test_status_fanout.py) and the benchmark row of how long the feed takes to read
the change sets (bench/gateway_sse_bench.py) run this same scenario.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from switchboard.status.v1 import status_pb2

from devsupport.waiting import wait_until
from gateway.status_fanout import StatusFanout

__all__ = ["PaceRun", "run_paced_fanout"]

FRAME_ID = re.compile(rb"^id: (\d+)", re.MULTILINE)


class PacedWatch:
    """A WatchSnapshot call as grpc.aio reads one: each message costs the reader an event-loop turn.
    The snapshot (revision 1), then change sets 2..``last`` once ``go`` is set, then a live silence.
    ``stall_s`` > 0: before change set ``stall_at`` the read holds the loop that long (the process
    descheduled, a slow turn)."""

    def __init__(self, go: asyncio.Event, last: int, stall_at: int, stall_s: float) -> None:
        self.go, self.last, self.sent, self.read_at = go, last, 0, 0.0
        self.stall_at, self.stall_s = stall_at, stall_s

    async def read(self) -> status_pb2.WatchSnapshotResponse:
        await asyncio.sleep(0)
        if self.sent == 0:
            self.sent = 1
            return status_pb2.WatchSnapshotResponse(snapshot=status_pb2.Snapshot(revision=1))
        await self.go.wait()
        if self.sent >= self.last:
            await asyncio.Event().wait()  # the stream stays open with nothing more to say
        self.sent += 1
        if self.sent == self.stall_at:
            spend(self.stall_s)
        self.read_at = time.monotonic()
        return status_pb2.WatchSnapshotResponse(changes=status_pb2.ChangeSet(revision=self.sent))

    def cancel(self) -> bool:
        return True


class PacedStub:
    def __init__(self, watch: PacedWatch) -> None:
        self.watch = watch

    def WatchSnapshot(self, request: status_pb2.WatchSnapshotRequest) -> PacedWatch:
        return self.watch

    async def GetSnapshot(self, request: status_pb2.GetSnapshotRequest, **options: object) -> status_pb2.Snapshot:
        return status_pb2.Snapshot(revision=1)


def spend(seconds: float) -> None:
    """Hold the event loop for ``seconds`` (the CPU of a write)."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


@dataclass(frozen=True)
class PaceRun:
    received: list[list[int]]
    """Each client's frame ids, in the order received."""
    writes: list[int]
    """Each client's writes (chunks taken from its stream)."""
    read_all_s: float
    """From the first change set offered to the feed reading the last one."""


async def run_paced_fanout(
    clients: int, last: int, write_cost_s: float, *, stall_at: int = 0, stall_s: float = 0.0
) -> PaceRun:
    """``clients`` SSE clients on one feed, each write costing ``write_cost_s``, while the watch
    delivers change sets 2..``last`` as fast as the feed reads them."""
    go = asyncio.Event()
    watch = PacedWatch(go, last, stall_at, stall_s)
    fanout = StatusFanout(lambda: PacedStub(watch))  # type: ignore[arg-type, return-value]
    streams = [await fanout.subscribe([]) for _ in range(clients)]
    writes = [0] * clients

    async def client(index: int) -> list[int]:
        ids: list[int] = []
        async for chunk in streams[index]:
            spend(write_cost_s)  # a socket write's CPU
            writes[index] += 1
            ids += [int(i) for i in FRAME_ID.findall(chunk)]
            if ids[-1] == last:
                return ids
        return ids

    readers = [asyncio.create_task(client(index)) for index in range(clients)]
    try:
        await wait_until(lambda: min(writes) >= 1, within=30, what="every client's snapshot written")
        started = time.monotonic()
        go.set()
        async with asyncio.timeout(60):  # a bound for a broken feed; the run itself takes well under 1 s when quiet
            received = await asyncio.gather(*readers)
    finally:
        for reader in readers:
            reader.cancel()
        await fanout.stop()
    return PaceRun(list(received), writes, watch.read_at - started)
