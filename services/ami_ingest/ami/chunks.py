"""The read side of the AMI socket: the bytes the event loop received, handed over as they are.

asyncio's ``StreamReader`` copies each received chunk into a ``bytearray`` and ``read(n)`` copies
it out again (and moves what is left down), with Python bookkeeping around both: work per byte
and per read that the frame parser does not need, since it takes bytes as they come. This
protocol keeps the received ``bytes`` objects and hands one over as it is, joining only small
ones that wait together. It stays a ``StreamReaderProtocol`` (with an idle ``StreamReader``), so
``asyncio.StreamWriter`` writes, drains and closes the connection as before.

Same contract as ``StreamReader.read(limit)``: at most ``limit`` bytes per read (a larger single
chunk is handed over whole: the event loop reads at most 256 KiB at a time), ``b""`` at the end
of the stream, a connection error raised once it happened (what was still unread is dropped, as
the ``StreamReader`` did), and the socket paused while more than ``2 * limit`` bytes wait.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import cast

__all__ = ["ChunkReader", "open_chunked"]


class ChunkReader(asyncio.StreamReaderProtocol):
    def __init__(self, limit: int) -> None:
        self._idle_reader = asyncio.StreamReader(limit=limit)  # the base class keeps a weak reference
        super().__init__(self._idle_reader)
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._waiting = 0
        """Bytes received and not read yet."""
        self._reading_paused = False
        self._ended = False
        self._error: BaseException | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._read_loop = asyncio.get_running_loop()
        self._read_transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # A stream transport (uvloop's does not subclass asyncio.Transport, but has its methods).
        self._read_transport = cast(asyncio.Transport, transport)

    @property
    def idle_reader(self) -> asyncio.StreamReader:
        """The ``StreamReader`` the ``StreamWriter`` consults (it raises its connection error on drain)."""
        return self._idle_reader

    def data_received(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(data)
        self._waiting += len(data)
        self._wake()
        transport = self._read_transport
        if not self._reading_paused and self._waiting > 2 * self._limit and transport is not None:
            try:
                transport.pause_reading()
            except NotImplementedError:
                return
            self._reading_paused = True

    def eof_received(self) -> bool:
        self._ended = True
        self._wake()
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        if exc is not None:
            self._error = exc
        self._wake()
        self._read_transport = None
        super().connection_lost(exc)

    async def read(self) -> bytes:
        """The bytes received since the last read, at most ``limit`` of them (see the module
        docstring); ``b""`` once the peer closed and everything was read."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._ended:
                return b""
            self._wakeup = self._read_loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        if self._error is not None:
            raise self._error
        chunks = self._chunks
        data = chunks.popleft()
        if chunks and len(data) + len(chunks[0]) <= self._limit:
            parts = [data]
            size = len(data)
            while chunks and size + len(chunks[0]) <= self._limit:
                size += len(chunks[0])
                parts.append(chunks.popleft())
            data = b"".join(parts)
        self._waiting -= len(data)
        if self._reading_paused and self._waiting <= self._limit and self._read_transport is not None:
            self._reading_paused = False
            self._read_transport.resume_reading()
        return data

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)


async def open_chunked(
    host: str, port: int, *, limit: int, tls: ssl.SSLContext | None = None, server_hostname: str | None = None
) -> tuple[ChunkReader, asyncio.StreamWriter]:
    """Connect like ``asyncio.open_connection``, reading through a :class:`ChunkReader`."""
    loop = asyncio.get_running_loop()
    if tls is None:
        transport, protocol = await loop.create_connection(lambda: ChunkReader(limit), host, port)
    else:
        transport, protocol = await loop.create_connection(
            lambda: ChunkReader(limit), host, port, ssl=tls, server_hostname=server_hostname
        )
    return protocol, asyncio.StreamWriter(transport, protocol, protocol.idle_reader, loop)
