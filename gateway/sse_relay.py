"""A gRPC watch stream relayed as Server-Sent Events: the event streams of the media, notify and
queue admin routes (the status stream has its own fan-out, :mod:`gateway.status_fanout`).

Every relayed stream says ``ready`` ``{"live": true}`` once its subscription is live, then one
event per message; a backend failure ends it with one ``error`` event carrying the gateway's
error body, and however the stream ends (client gone included) the gRPC call is cancelled.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import grpc
import grpc.aio
from sse_starlette import ServerSentEvent

from gateway.errors import error_body
from runtime.grpc_client import read_message

__all__ = ["UNBUFFERED", "event", "ready", "relay"]

MessageT = TypeVar("MessageT")

# What the media and queue streams send (the notify inbox stream keeps sse_starlette's defaults,
# Cache-Control: no-store, and X-Accel-Buffering: no, which it sets on every stream anyway).
UNBUFFERED: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(name: str, value: Any) -> ServerSentEvent:
    """``value`` as compact JSON, non-ASCII text as is (the browser reads UTF-8)."""
    return ServerSentEvent(json.dumps(value, ensure_ascii=False, separators=(",", ":")), event=name)


def ready() -> ServerSentEvent:
    return event("ready", {"live": True})


async def relay(
    call: grpc.aio.UnaryStreamCall[Any, MessageT],
    frame: Callable[[MessageT], ServerSentEvent | None],
    *,
    ready_first: bool = True,
) -> AsyncIterator[ServerSentEvent]:
    """The events of ``call``: ``frame`` makes each message's event (None: nothing to send).

    ``ready_first``: say ``ready`` before the first message; a stream whose service sends its own
    "live" marker passes False and frames that marker as :func:`ready` instead.
    """
    try:
        if ready_first:
            yield ready()
        while (message := await read_message(call)) is not None:
            if (framed := frame(message)) is not None:
                yield framed
    except grpc.aio.AioRpcError as error:
        yield event("error", error_body(error.code(), error.details() or error.code().name))
    finally:
        call.cancel()
