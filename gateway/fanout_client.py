"""One client of the SSE fan-out (:mod:`gateway.status_fanout`): the frames it is given, written
to its connection by the feed or queued for its own task, and how its stream ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

import grpc
from sse_starlette import ServerSentEvent

from gateway.errors import error_body
from gateway.http_server import Wire, body_chunk
from gateway.responses import dumps

__all__ = ["MAX_BUFFERED_BYTES", "MAX_PENDING_FRAMES", "FanoutClient", "error_frame"]

MAX_PENDING_FRAMES = 4096
"""Frames a client written from its own task may have waiting before its stream is ended."""
MAX_BUFFERED_BYTES = 1 << 20
"""Bytes a client's connection may hold unsent before its stream is ended (a frame is written
whole however large, so one snapshot of a large center never trips it on its own)."""


def error_frame(code: grpc.StatusCode, message: str) -> bytes:
    return ServerSentEvent(dumps(error_body(code, message)), event="error").encode()


class FanoutClient:
    """One client: its frames not yet written (or its connection, once the feed writes to it),
    the revision of the last frame it was given, and whether its stream is over."""

    __slots__ = ("ended", "on_overflow", "pending", "ready", "seen", "wire")

    def __init__(
        self, on_overflow: Callable[[FanoutClient], None], first: Iterable[bytes] = (), *, seen: int = 0
    ) -> None:
        self.pending: list[bytes] = list(first)
        self.ready = asyncio.Event()
        self.ended = False
        self.on_overflow = on_overflow
        self.seen = seen
        self.wire: Wire | None = None
        if self.pending:
            self.ready.set()

    def push(self, frame: bytes) -> None:
        """Add a frame for the client's task to write."""
        if self.ended:
            return
        if len(self.pending) >= MAX_PENDING_FRAMES:
            self._fell_behind()
            return
        self.pending.append(frame)
        self.ready.set()

    def send(self, frames: list[bytes], chunk: bytes) -> None:
        """One round's ``frames``: ``chunk`` (them joined, as one body chunk) written to the client's
        connection, or, before it has one, the frames queued for its task."""
        wire = self.wire
        if wire is None:
            for frame in frames:
                self.push(frame)
        elif self.ended or wire.is_closing():
            return  # gone: its task sees the disconnect and leaves
        elif wire.get_write_buffer_size() > MAX_BUFFERED_BYTES:
            self._fell_behind()
        else:
            wire.write(chunk)

    def write_to(self, wire: Wire) -> None:
        """From now on the feed writes this client's frames to ``wire``, its connection, whose
        response has sent everything this client's task took; what is queued meanwhile goes first."""
        self.wire = wire
        if self.pending and not self.ended:
            pending, self.pending = self.pending, []
            self.ready.clear()
            wire.write(body_chunk(b"".join(pending)))

    def _fell_behind(self) -> None:
        self.pending = []  # superseded: the stream ends here, and the client starts over from a snapshot
        self.end(error_frame(grpc.StatusCode.RESOURCE_EXHAUSTED, "this stream fell behind; reconnect"))
        self.on_overflow(self)

    def end(self, last: bytes | None = None) -> None:
        """End the stream after what it was given (then ``last``, an error event, if any)."""
        if self.ended:
            return
        self.ended = True
        if last is not None:
            self.pending.append(last)
        self.ready.set()

    async def frames(self) -> AsyncIterator[bytes]:
        while True:
            await self.ready.wait()
            self.ready.clear()
            batch, self.pending = self.pending, []
            if batch:
                yield b"".join(batch)
            if self.ended:
                return
