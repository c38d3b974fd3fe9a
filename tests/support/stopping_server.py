"""A gRPC server stopped while a watch stream is open: the stream ends as the stop begins, with OK.

A service's stopping hooks end its long-lived streams before the drain; without them the drain
waits the whole grace for those streams. The grace here is far longer than the read's timeout, so
a stream only cancelled when the grace runs out fails the read instead of passing late.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import on_any_port
from runtime.grpc_server import GrpcServer
from runtime.grpc_service import GrpcService

LONG_GRACE_SECONDS = 4.5
READ_WITHIN_SECONDS = 3.0


@asynccontextmanager
async def served_with_a_long_grace(service: GrpcService) -> AsyncIterator[tuple[GrpcServer, grpc.aio.Channel]]:
    """``service`` on a loopback port with a long drain grace, and a channel to it."""
    server = GrpcServer(on_any_port(service), authenticator=authenticator_for_tests(), grace_seconds=LONG_GRACE_SECONDS)
    channel = aio_channel(f"127.0.0.1:{await server.start()}")
    try:
        yield server, channel
    finally:
        await channel.close()
        if not server.stopping.is_set():
            await server.stop()  # the test failed before its stop


async def stop_ends_the_stream(server: GrpcServer, stream: grpc.aio.UnaryStreamCall[Any, Any]) -> None:
    """Stop ``server``: ``stream`` reads EOF within READ_WITHIN_SECONDS and its status is OK."""
    stopping = asyncio.ensure_future(server.stop())
    async with asyncio.timeout(READ_WITHIN_SECONDS):
        ended = await stream.read()
    assert ended is grpc.aio.EOF, f"the stream sent {ended!r} instead of ending"
    code = await stream.code()
    assert code == grpc.StatusCode.OK, f"the stream ended with {code.name}"
    await stopping
