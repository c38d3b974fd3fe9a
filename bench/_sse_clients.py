"""The SSE clients of bench/gateway_sse_bench.py: raw asyncio connections to the gateway's
``/api/queue-status/stream``, and ``python -m bench._sse_clients PORT``, the process that holds the
bulk (non-probe) clients, driven by one command a line on stdin, each answered by one line on stdout:

- ``connect N``: open N more connections (each sends its ``GET``); answered ``ok`` once opened.
- ``snapshots``: wait (at most :data:`SNAPSHOT_WAIT_S`) until every connection has its response's
  snapshot; ``ok``, or ``error`` and why.
- ``drain``: from now on read the connections in bulk, every :data:`DRAIN_EVERY_S`; ``ok``.
- ``close``: close them all; ``closed`` and how many of them the gateway cut off (an ``error``
  event, or the connection closed before this command), then the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from typing import cast

from devsupport.auth import AUTH_HEADERS
from runtime.event_loop import event_loop_factory

__all__ = ["DRAIN_EVERY_S", "SNAPSHOT_WAIT_S", "SseClient", "close", "drain", "request", "wait_snapshots"]

DRAIN_EVERY_S = 0.05
"""How often the bulk clients' sockets are read (in bulk: one Python reader per browser is what a
machine with 500 browsers has; one process on a shared 2-core box cannot read 500 sockets per frame).
Not less often: read every 200 ms (6 % of a core instead of 15 %) the frames queued in their
receive buffers made the gateway's writes dearer, and the p99 at 500 clients went from 51-59 ms to
64-76 ms."""
SNAPSHOT_WAIT_S = 60.0
TAIL = 40
"""Bytes of the previous read kept, so a reason or an error event split across two reads is still seen."""


class SseClient(asyncio.Protocol):
    """One SSE connection: sends the request, reads everything; a probe stamps the arrival
    (``time.time()`` in :meth:`data_received`) of every match of ``stamp`` in what it reads."""

    def __init__(self, request: bytes, stamp: Callable[[bytes], list[bytes]] | None = None) -> None:
        self.request = request
        self.stamp = stamp
        self.arrivals: dict[str, float] = {}
        self.cut_off = False
        """The gateway ended the stream (an ``error`` event, or the connection closed)."""
        self.snapshot = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self._head = b""
        self._tail = b""
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass of it
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.snapshot.done():
            self._head += data
            if not self._head.startswith(b"HTTP/1.1 200"):
                if b"\r\n\r\n" in self._head:
                    self.snapshot.set_exception(RuntimeError(self._head.split(b"\r\n", 1)[0].decode()))
                return
            if b"event: snapshot" in self._head:
                self.snapshot.set_result(None)
                self._head = b""
            return
        if b"event: error" in data or b"event: error" in self._tail + data[:TAIL]:
            self.cut_off = True
        if self.stamp is not None:
            for match in self.stamp(self._tail + data):
                self.arrivals.setdefault(match.decode(), now)
        self._tail = data[-TAIL:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.cut_off = True
        if not self.snapshot.done():
            self.snapshot.set_exception(ConnectionError(f"closed before the snapshot: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)


def request(port: int) -> bytes:
    headers = "".join(f"{name}: {value}\r\n" for name, value in AUTH_HEADERS.items())
    return (
        f"GET /api/queue-status/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n{headers}\r\n"
    ).encode()


async def wait_snapshots(clients: list[SseClient], what: str) -> None:
    try:
        async with asyncio.timeout(SNAPSHOT_WAIT_S):
            await asyncio.gather(*(c.snapshot for c in clients))
    except TimeoutError:
        waiting = [c for c in clients if not c.snapshot.done()]
        raise TimeoutError(
            f"{len(waiting)} of {what} had no snapshot after {SNAPSHOT_WAIT_S:g} s"
            f" (one had read {waiting[0]._head[:200]!r})"
        ) from None


async def drain(clients: list[SseClient]) -> None:
    """Read ``clients`` every :data:`DRAIN_EVERY_S` in bulk (paused in between: the kernel buffers)."""
    for client in clients:
        assert client.transport is not None
        client.transport.pause_reading()
    try:
        while True:
            await asyncio.sleep(DRAIN_EVERY_S)
            for client in clients:
                assert client.transport is not None
                client.transport.resume_reading()
            await asyncio.sleep(0.002)
            for client in clients:
                assert client.transport is not None
                client.transport.pause_reading()
    finally:
        for client in clients:
            if client.transport is not None and not client.transport.is_closing():
                client.transport.resume_reading()


async def close(clients: list[SseClient]) -> None:
    for client in clients:
        assert client.transport is not None
        client.closing = True
        client.transport.close()
    async with asyncio.timeout(10):
        await asyncio.gather(*(c.closed for c in clients))


async def _serve_bulk(port: int) -> None:
    """The bulk clients' process: the commands of the module docstring, from stdin."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients: list[SseClient] = []
    unchecked: list[SseClient] = []
    draining: asyncio.Task[None] | None = None

    def answer(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    async def connect(count: int) -> str:
        for _ in range(count):
            client = SseClient(request(port))
            await loop.create_connection(lambda c=client: c, "127.0.0.1", port)  # type: ignore[misc]
            clients.append(client)
            unchecked.append(client)
        return "ok"

    async def snapshots() -> str:
        waiting, unchecked[:] = list(unchecked), []
        try:
            await wait_snapshots(waiting, "the bulk clients just opened")
        except (TimeoutError, RuntimeError, ConnectionError) as error:
            return f"error {error}"
        return "ok"

    async def start_draining() -> str:
        nonlocal draining
        draining = asyncio.create_task(drain(clients))
        return "ok"

    commands: dict[str, Callable[..., Awaitable[str]]] = {
        "connect": connect,
        "snapshots": snapshots,
        "drain": start_draining,
    }
    while line := (await reader.readline()).decode().split():
        name, args = line[0], [int(arg) for arg in line[1:]]
        if name == "close":
            break
        answer(await commands[name](*args))
    if draining is not None:
        draining.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await draining
    await close(clients)
    answer(f"closed {sum(c.cut_off for c in clients)}")


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(_serve_bulk(int(sys.argv[1])))
