"""Per-method handler layers (tracing, logs and metrics, authentication), applied once per method.

Each layer turns a method's handler into a wrapped one (:meth:`HandlerLayer.wrap`). A layer is
also a grpc.aio server interceptor, for servers built by hand (tests, fakes), but the interceptor
form costs on every call: grpc.aio awaits each interceptor's ``intercept_service`` (a coroutine
and a ``functools.partial`` per layer per call) before it can even look the handler up.
:class:`LayeredServer` instead wraps the handlers as they are registered, so a call finds its
method's wrapped handler straight away. The nesting is the interceptors' own: for layers
``[a, b, c]`` a call runs ``a``'s wrapper, then ``b``'s, then ``c``'s, then the servicer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import grpc
import grpc.aio

from runtime.grpc_types import Continuation, MethodHandler

__all__ = ["HandlerLayer", "LayeredServer", "UnaryBehavior", "unary_wrapped", "wrap_in_layers"]


class HandlerLayer(grpc.aio.ServerInterceptor):
    """Wraps a method's handler; as an interceptor, the wrapped handler is built once per method
    and reused while the handler beneath it stays the same object."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[MethodHandler, MethodHandler]] = {}

    def wrap(self, method: str, handler: MethodHandler) -> MethodHandler:
        """``handler`` of ``method`` (``/pkg.Service/Method``) with this layer around it (or as it is)."""
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def wrap_in_layers(layers: Sequence[HandlerLayer], method: str, handler: MethodHandler) -> MethodHandler:
    """``handler`` wrapped by every layer, the first layer outermost (as interceptors nest)."""
    for layer in reversed(layers):
        handler = layer.wrap(method, handler)
    return handler


UnaryBehavior = Callable[[Any, Any], Any]
"""A unary-response method's behavior: ``(request or request iterator, context)`` → answer or awaitable."""


def unary_wrapped(handler: MethodHandler, wrap: Callable[[UnaryBehavior], UnaryBehavior]) -> MethodHandler | None:
    """``handler`` with its behavior replaced by ``wrap(behavior)`` when it answers once (unary
    or client-streaming), else None. For layers whose per-call work fits in one plain coroutine:
    cheaper than an async context manager around the call (an async generator per call)."""
    make: Callable[..., MethodHandler]
    if handler.unary_unary:
        make = grpc.unary_unary_rpc_method_handler
    elif handler.stream_unary:
        make = grpc.stream_unary_rpc_method_handler
    else:
        return None
    # grpc's stubs type a behavior's context as the blocking one; grpc.aio passes its own.
    behavior = cast(UnaryBehavior, handler.unary_unary or handler.stream_unary)
    return make(
        wrap(behavior),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _LayeredGeneric(grpc.GenericRpcHandler):
    """A generic handler whose answers come wrapped, each method's wrapping built once."""

    def __init__(self, inner: grpc.GenericRpcHandler, layers: Sequence[HandlerLayer]) -> None:
        self._inner = inner
        self._layers = layers
        self._wrapped: dict[str, tuple[MethodHandler, MethodHandler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> MethodHandler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = wrap_in_layers(self._layers, method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class LayeredServer:
    """Stands in for a grpc.aio server while services register with it: every handler they add
    (generic or registered) reaches the server wrapped in ``layers``. Anything else is the
    server's own."""

    def __init__(self, server: grpc.aio.Server, layers: Sequence[HandlerLayer]) -> None:
        self._server = server
        self._layers = tuple(layers)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_LayeredGeneric(h, self._layers) for h in generic_rpc_handlers))

    def add_registered_method_handlers(self, service_name: str, method_handlers: Mapping[str, MethodHandler]) -> None:
        wrapped = {
            name: wrap_in_layers(self._layers, f"/{service_name}/{name}", handler)
            for name, handler in method_handlers.items()
        }
        self._server.add_registered_method_handlers(service_name, wrapped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
