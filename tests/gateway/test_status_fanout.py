"""The SSE fan-out's per-client buffer (gateway.status_fanout): a client that falls behind is cut off."""

from __future__ import annotations

import asyncio
import json
import re
import time

from switchboard.status.v1 import status_pb2

from gateway import status_fanout
from gateway.status_fanout import MAX_PENDING_FRAMES


async def test_a_client_falling_behind_gets_one_error_event_and_its_stream_ends() -> None:
    left: list[object] = []
    client = status_fanout._Client(left.append)
    for index in range(MAX_PENDING_FRAMES + 1):
        client.push(f"data: {index}\r\n\r\n".encode())
    chunks = [chunk async for chunk in client.frames()]
    assert left == [client]
    assert len(chunks) == 1
    event, data = chunks[0].decode().split("\r\n")[:2]
    assert event == "event: error"
    assert json.loads(data.removeprefix("data: "))["error"]["code"] == "RESOURCE_EXHAUSTED"


async def test_frames_waiting_for_a_client_go_out_in_one_write() -> None:
    client = status_fanout._Client(lambda _: None, [b"a", b"b"])
    client.push(b"c")
    stream = client.frames()
    assert await anext(stream) == b"abc"
    client.end()
    assert [chunk async for chunk in stream] == []


class _PacedWatch:
    """A WatchSnapshot call as grpc.aio reads one: each message costs the reader an event-loop turn.
    The snapshot (revision 1), then change sets 2..``last`` once ``go`` is set, then a live silence."""

    def __init__(self, go: asyncio.Event, last: int) -> None:
        self.go, self.last, self.sent, self.read_at = go, last, 0, 0.0

    async def read(self) -> status_pb2.WatchSnapshotResponse:
        await asyncio.sleep(0)
        if self.sent == 0:
            self.sent = 1
            return status_pb2.WatchSnapshotResponse(snapshot=status_pb2.Snapshot(revision=1))
        await self.go.wait()
        if self.sent >= self.last:
            await asyncio.Event().wait()  # the stream stays open with nothing more to say
        self.sent += 1
        self.read_at = time.monotonic()
        return status_pb2.WatchSnapshotResponse(changes=status_pb2.ChangeSet(revision=self.sent))

    def cancel(self) -> bool:
        return True


class _PacedStub:
    def __init__(self, watch: _PacedWatch) -> None:
        self.watch = watch

    def WatchSnapshot(self, request: status_pb2.WatchSnapshotRequest) -> _PacedWatch:
        return self.watch

    async def GetSnapshot(self, request: status_pb2.GetSnapshotRequest, **options: object) -> status_pb2.Snapshot:
        return status_pb2.Snapshot(revision=1)


def _spend(seconds: float) -> None:
    """Hold the event loop for ``seconds`` (the CPU of a write)."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


async def test_the_shared_watch_keeps_pace_with_many_clients_whose_writes_cost_time() -> None:
    """Woken per message, N clients' writes made every read of the shared watch cost N writes, and
    the feed fell behind the status service for good (the bench's stall at 250 SSE clients)."""
    clients, last, write_cost_s = 100, 150, 0.0003
    go = asyncio.Event()
    watch = _PacedWatch(go, last)
    fanout = status_fanout.StatusFanout(lambda: _PacedStub(watch))  # type: ignore[arg-type, return-value]
    streams = [await fanout.subscribe([]) for _ in range(clients)]
    writes = [0] * clients

    async def client(index: int) -> list[int]:
        ids: list[int] = []
        async for chunk in streams[index]:
            _spend(write_cost_s)  # a socket write's CPU
            writes[index] += 1
            ids += [int(i) for i in re.findall(rb"^id: (\d+)", chunk, re.MULTILINE)]
            if ids[-1] == last:
                return ids
        return ids

    readers = [asyncio.create_task(client(index)) for index in range(clients)]
    await asyncio.sleep(0.05)
    started = time.monotonic()
    go.set()
    async with asyncio.timeout(30):
        received = await asyncio.gather(*readers)
    read_all_s = watch.read_at - started
    await fanout.stop()
    assert all(ids == list(range(1, last + 1)) for ids in received)  # each frame once, in order
    # Per message: 100 writes of 0.3 ms each = 4.5 s for the 149 change sets; paced: a few flushes.
    assert read_all_s < 1.5, f"the shared watch took {read_all_s:.2f} s to read {last - 1} change sets"
    assert max(writes) < last / 3
