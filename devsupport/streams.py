"""Reading grpc.aio response streams in tests and benchmarks, typed."""

from __future__ import annotations

from typing import Any, TypeVar

import grpc.aio

from runtime.grpc_client import read_message

T = TypeVar("T")


async def next_message(call: grpc.aio.UnaryStreamCall[Any, T] | grpc.aio.StreamStreamCall[Any, T]) -> T:
    """The stream's next message; EOFError when it ended instead."""
    message = await read_message(call)
    if message is None:
        raise EOFError("the stream ended")
    return message
