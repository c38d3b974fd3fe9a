"""Wrapping a grpc.aio method handler in an async context manager, for server interceptors.

``wrap_around(handler, around)`` returns a handler of the same kind (unary or streaming, either
way) whose behavior runs inside ``async with around(context):``. The manager may refuse the call
on entry (``await context.abort(...)``), and on exit sees how the call ended: normally, by an
exception (``grpc.aio.AbortError`` for an abort) or by cancellation. A streaming response is
yielded item by item inside the manager, so the manager spans the whole stream.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from typing import Any

import grpc
import grpc.aio

from runtime.grpc_types import MethodHandler, ServicerContext

__all__ = ["Around", "stream_items", "wrap_around"]

Around = Callable[[ServicerContext], AbstractAsyncContextManager[object]]


def _unary_response(behavior: Callable[..., Any], around: Around) -> Callable[..., Any]:
    async def wrapped(request: Any, context: ServicerContext) -> Any:
        async with around(context):
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

    return wrapped


async def stream_items(result: Any) -> AsyncGenerator[Any, None]:
    """The responses of a streaming behavior's ``result``, whichever form grpc.aio allows it:
    an async iterator, an awaitable (the servicer writes with ``context.write()``, nothing is
    yielded) or a plain iterable."""
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
    elif inspect.isawaitable(result):
        await result
    elif result is not None:
        for item in result:
            yield item


def _stream_response(behavior: Callable[..., Any], around: Around) -> Callable[..., Any]:
    async def wrapped(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
        async with around(context), aclosing(stream_items(behavior(request, context))) as items:
            async for item in items:
                yield item

    return wrapped


def wrap_around(handler: MethodHandler, around: Around) -> MethodHandler:
    """``handler`` with its behavior run inside ``around(context)`` (see the module docstring)."""
    kwargs = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_unary_response(handler.unary_unary, around), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_unary_response(handler.stream_unary, around), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_stream_response(handler.unary_stream, around), **kwargs)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(_stream_response(handler.stream_stream, around), **kwargs)
    return handler
