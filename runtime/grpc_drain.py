"""A client-streaming handler that refuses reads the rest of the request stream before answering.

grpc.aio's client ends a call with ``INTERNAL: Internal error from Core`` (or CANCELLED) instead of
the server's status when one of its writes, or its half-close, reaches the core after that status
arrived (grpc/grpc#36066, open in grpcio 1.85). A handler that refuses in the middle of a stream
(an upload that is no image, or over its limit) would reach such a client as an internal error,
at random. So the refusal waits until the client has half-closed: what it still sends is read and
discarded, bounded by ``max_seconds``, ``max_bytes`` and the call's deadline less
``DEADLINE_MARGIN`` (a client that stalls still gets the refusal, not DEADLINE_EXCEEDED; a hostile
client cannot hold the handler; past a bound the refusal is sent anyway and the race is the client's).

Server-streaming-only and long-lived bidirectional calls, where the client never half-closes,
have nothing to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from runtime.grpc_types import ServicerContext

__all__ = ["DEADLINE_MARGIN", "DRAIN_SECONDS", "drain_requests", "draining_on_refusal"]

DRAIN_SECONDS = 10.0
"""The longest a refusal waits for the client's half-close."""
DEADLINE_MARGIN = 1.0
"""A refusal is sent at the latest this long before the call's deadline."""


class _Sized(Protocol):
    def ByteSize(self) -> int: ...


async def drain_requests(
    requests: AsyncIterator[_Sized], context: ServicerContext, *, max_bytes: int, max_seconds: float = DRAIN_SECONDS
) -> int:
    """Read and discard ``requests`` until the client half-closes, ``max_bytes`` are read past,
    ``max_seconds`` or the call's deadline less :data:`DEADLINE_MARGIN` pass, or the stream fails; the bytes read."""
    remaining = context.time_remaining()
    seconds = max_seconds if remaining is None else max(0.0, min(max_seconds, remaining - DEADLINE_MARGIN))
    read = 0
    with contextlib.suppress(Exception):  # a timeout, a cancelled or broken stream: stop draining
        async with asyncio.timeout(seconds):
            async for message in requests:
                read += message.ByteSize()
                if read > max_bytes:
                    break
    return read


@contextlib.asynccontextmanager
async def draining_on_refusal(
    requests: AsyncIterator[_Sized], context: ServicerContext, *, max_bytes: int, max_seconds: float = DRAIN_SECONDS
) -> AsyncIterator[None]:
    """Around a client-streaming handler's work: an error leaving it (a refusal) is raised only
    after :func:`drain_requests` has read the rest of ``requests``."""
    try:
        yield
    except Exception:
        await drain_requests(requests, context, max_bytes=max_bytes, max_seconds=max_seconds)
        raise
