"""How the SSE fan-out writes (gateway.status_fanout): on uvicorn each round of frames goes straight to
every client's connection as one chunk, with the bytes a client's own task would have written; a
connection that stops reading is cut off after what it was sent; a joining client whose snapshot is
newer than the feed gets no change twice; a feed that ends first sends what it read."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import cast

import grpc
import grpc.aio
import httpx
import pytest
from switchboard.status.v1 import status_pb2 as S

from devsupport.auth import AUTH_HEADERS
from gateway import fanout_client
from gateway.status_fanout import StatusFanout
from tests.gateway.fake_status import FakeStatusService, operator
from tests.gateway.harness import LiveGateway

FRAME_ID = re.compile(rb"^id: (\d+)", re.MULTILINE)
REASON_BYTES = 60_000
_KERNEL_SEND_BUFFER_MAX = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def _frames(body: bytes) -> list[bytes]:
    """The SSE events of ``body``, without keep-alive comments (pings come at their own times)."""
    return [frame for frame in body.split(b"\r\n\r\n") if frame and not frame.startswith(b":")]


def _ids(frames: list[bytes]) -> list[int]:
    return [int(match.group(1)) for frame in frames if (match := FRAME_ID.search(frame))]


def _change(index: int, reason_bytes: int = 8) -> S.StateChange:
    reason = f"r{index:06d}".ljust(reason_bytes, "x")
    return S.StateChange(operator_upserted=operator("sales", "PJSIP/1002", "Bob", paused=True, paused_reason=reason))


async def _read_until(chunks: AsyncIterator[bytes], body: bytearray, revision: int) -> None:
    """Read ``chunks`` into ``body`` until it holds the frame of ``revision``."""
    async with asyncio.timeout(10):
        while revision not in _ids(_frames(bytes(body))):
            body += await anext(chunks)


async def test_a_connection_written_by_the_feed_gets_exactly_the_frames_a_clients_own_task_writes(
    live_gateway: LiveGateway, fake_status: FakeStatusService
) -> None:
    fanout: StatusFanout = live_gateway.app.state.status_fanout
    async with (
        httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", "/api/queue-status/stream") as response,
    ):
        written, chunks = bytearray(), response.aiter_bytes()
        await _read_until(chunks, written, fake_status.revision)  # the snapshot
        # In this process, without a connection: the same feed, written from the client's own task.
        own = cast(AsyncGenerator[bytes], await fanout.subscribe([]))
        queued = bytearray()
        await _read_until(own, queued, fake_status.revision)
        # The HTTP client's later frames are written by the feed (the point of this test).
        assert [c.wire is not None for c in fanout._feeds[()].clients].count(True) == 1

        last = 0
        for burst in range(6):  # rounds of one frame and of several
            for index in range(burst + 1):
                last = fake_status.push(_change(burst * 10 + index))
            await asyncio.sleep(0.01)
        await _read_until(chunks, written, last)
        await _read_until(own, queued, last)
        await own.aclose()

    later = _frames(bytes(written))[1:]
    assert later == _frames(bytes(queued))[1:]
    assert _ids(later) == list(range(2, last + 1))


async def _raw_stream(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A GET of the stream on a socket with a small receive buffer, read up to its head, then not read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
    headers = "".join(f"{name}: {value}\r\n" for name, value in AUTH_HEADERS.items())
    writer.write(f"GET /api/queue-status/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower(), head
    # The client stops reading: without this its event loop (the test's own) would keep reading
    # into the StreamReader's buffer, and under load could keep up so the stream never fell behind.
    cast(asyncio.Transport, writer.transport).pause_reading()
    return reader, writer


async def _body(reader: asyncio.StreamReader) -> bytes:
    """A chunked body up to its last chunk, unframed."""
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readexactly(2)
    return bytes(body)


async def test_a_connection_that_stops_reading_is_ended_after_what_it_was_sent_and_the_others_keep_theirs(
    live_gateway: LiveGateway, fake_status: FakeStatusService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout_client, "MAX_BUFFERED_BYTES", 64 * 1024)
    reader, writer = await _raw_stream(live_gateway.port)
    try:
        async with (
            httpx.AsyncClient(base_url=live_gateway.url, timeout=10, headers=AUTH_HEADERS) as client,
            client.stream("GET", "/api/queue-status/stream") as response,
        ):
            healthy, chunks = bytearray(), response.aiter_bytes()
            await _read_until(chunks, healthy, fake_status.revision)
            # More than the kernel holds for one connection (its send buffer grows up to tcp_wmem's last).
            last = 0
            for index in range(_KERNEL_SEND_BUFFER_MAX // REASON_BYTES + 30):
                last = fake_status.push(_change(index, reason_bytes=REASON_BYTES))
                if index % 10 == 9:
                    await _read_until(chunks, healthy, last)
            await _read_until(chunks, healthy, last)
        assert _ids(_frames(bytes(healthy))) == list(range(1, last + 1))

        cast(asyncio.Transport, writer.transport).resume_reading()
        async with asyncio.timeout(30):  # the slow client reads at last
            frames = _frames(await _body(reader))
    finally:
        writer.close()
    assert b"event: snapshot" in frames[0]
    ids = _ids(frames[1:-1])
    assert ids == list(range(2, 2 + len(ids)))  # in order, none missing, none twice
    assert ids[-1] < last
    assert frames[-1].startswith(b"event: error"), frames[-1][:200]
    assert b"RESOURCE_EXHAUSTED" in frames[-1]


class _Watch:
    """A WatchSnapshot call: the snapshot at revision 1, then change sets 2..``last`` once ``go`` is set,
    all in one read turn, then ``end`` (None: a live silence)."""

    def __init__(self, go: asyncio.Event, last: int, end: grpc.aio.AioRpcError | None = None) -> None:
        self.go, self.last, self.end, self.sent = go, last, end, 0

    async def read(self) -> S.WatchSnapshotResponse:
        if self.sent == 0:
            self.sent = 1
            return S.WatchSnapshotResponse(snapshot=S.Snapshot(revision=1))
        await self.go.wait()
        if self.sent >= self.last:
            if self.end is not None:
                raise self.end
            await asyncio.Event().wait()
        self.sent += 1
        return S.WatchSnapshotResponse(changes=S.ChangeSet(revision=self.sent))

    def cancel(self) -> bool:
        return True


class _Stub:
    def __init__(self, watch: _Watch, snapshot_revision: int) -> None:
        self.watch, self.snapshot_revision = watch, snapshot_revision

    def WatchSnapshot(self, request: S.WatchSnapshotRequest) -> _Watch:
        return self.watch

    async def GetSnapshot(self, request: S.GetSnapshotRequest, **options: object) -> S.Snapshot:
        return S.Snapshot(revision=self.snapshot_revision)


async def _read_all(stream: AsyncIterator[bytes], until: int) -> list[bytes]:
    frames: list[bytes] = []
    async with asyncio.timeout(5):
        async for chunk in stream:
            frames += _frames(chunk)
            if until in _ids(frames) or frames[-1].startswith(b"event: error"):
                return frames
    return frames


async def test_a_client_whose_snapshot_is_newer_than_the_feed_gets_only_the_changes_after_it() -> None:
    go = asyncio.Event()
    fanout = StatusFanout(lambda: _Stub(_Watch(go, last=5), snapshot_revision=3))  # type: ignore[arg-type, return-value]
    first = await fanout.subscribe([])
    assert _ids(_frames(await anext(first))) == [1]
    joined = await fanout.subscribe([])  # GetSnapshot at revision 3; the feed has read revision 1 only
    go.set()
    assert _ids(await _read_all(first, until=5)) == [2, 3, 4, 5]
    assert _ids(await _read_all(joined, until=5)) == [3, 4, 5]
    await fanout.stop()


async def test_a_feed_whose_watch_fails_sends_the_frames_it_read_then_the_error() -> None:
    go = asyncio.Event()
    failure = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone")
    fanout = StatusFanout(lambda: _Stub(_Watch(go, last=4, end=failure), snapshot_revision=1))  # type: ignore[arg-type, return-value]
    stream = await fanout.subscribe([])
    go.set()  # change sets 2..4 and the failure come in one turn: no round has written them yet
    frames = await _read_all(stream, until=-1)
    assert _ids(frames) == [1, 2, 3, 4]
    assert frames[-1].startswith(b"event: error")
    assert b"UNAVAILABLE" in frames[-1]
