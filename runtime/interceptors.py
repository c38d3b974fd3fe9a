"""The grpc.aio server interceptor every Switchboard server runs (after OpenTelemetry's).

For every RPC it:

- maps a :class:`runtime.errors.SwitchboardError` to its gRPC status (``grpc_status_for``) with
  the message as details and the rich-error trailer of :mod:`runtime.grpc_errors`;
- maps ``NotImplementedError`` (what generated servicer bases raise) to UNIMPLEMENTED;
- maps any other exception to INTERNAL with the generic message ``internal error`` and logs it
  with its traceback as ``rpc failed`` (the client never sees internals);
- logs one ``rpc finished`` line (method, code, outcome, duration_ms, trace_id) — at DEBUG for
  successful health and reflection calls so probes do not flood the log, and for successful
  calls faster than :data:`SLOW_CALL_SECONDS` of the hot methods a service declares
  (``GrpcService.debug_when_ok``; errors and slow calls keep INFO/WARNING/ERROR);
- feeds the ``grpc_server_*`` Prometheus metrics of :mod:`runtime.metrics` (label children
  resolved once per method, not per call).

Servicers may still call ``context.abort(...)`` themselves; that status is kept as is.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import aclosing
from typing import Any

import grpc
import grpc.aio

from runtime.errors import SwitchboardError
from runtime.grpc_errors import grpc_error_for
from runtime.grpc_layers import HandlerLayer
from runtime.grpc_status import details_of, status_code_of
from runtime.grpc_types import MethodHandler
from runtime.grpc_wrap import stream_items
from runtime.logging import get_logger
from runtime.metrics import GRPC_HANDLED, GRPC_HANDLING_SECONDS, GRPC_STARTED, split_method

__all__ = ["SLOW_CALL_SECONDS", "ServerInterceptor", "status_code_of"]

log = get_logger("runtime.grpc")
_stdlib_log = logging.getLogger("runtime.grpc")

_QUIET_SERVICES = ("grpc.health.v1.", "grpc.reflection.")
_SERVER_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
_DEPENDENCY_FAULTS = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

SLOW_CALL_SECONDS = 0.1
"""A successful call of a method logged at DEBUG is still logged at INFO when it took this long."""


class _Method:
    """What is fixed per method and RPC type: names, metric children (labels resolved once)."""

    __slots__ = ("handled", "handling", "method", "method_name", "quiet_ok", "rpc_type", "service", "started")

    def __init__(self, method: str, rpc_type: str, *, quiet_ok: bool) -> None:
        self.method = method
        self.service, self.method_name = split_method(method)
        self.rpc_type = rpc_type
        self.quiet_ok = quiet_ok or self.service.startswith(_QUIET_SERVICES)
        self.started = GRPC_STARTED.labels(self.service, self.method_name, rpc_type)
        self.handling = GRPC_HANDLING_SECONDS.labels(self.service, self.method_name, rpc_type)
        self.handled: dict[grpc.StatusCode, Any] = {}

    def handled_child(self, code: grpc.StatusCode) -> Any:
        child = self.handled.get(code)
        if child is None:
            child = self.handled[code] = GRPC_HANDLED.labels(self.service, self.method_name, self.rpc_type, code.name)
        return child


class _Call:
    """Bookkeeping for one RPC: start time, metrics and the final log line."""

    __slots__ = ("info", "started")

    def __init__(self, info: _Method) -> None:
        self.info = info
        self.started = time.perf_counter()
        info.started.inc()

    async def fail(self, context: grpc.aio.ServicerContext, error: BaseException) -> None:
        """Turn ``error`` into the RPC's status; always raises (grpc's AbortError).

        The call is recorded before aborting: abort sends the status, and a client that
        reads metrics right after must see its call counted.
        """
        trailers: tuple[tuple[str, bytes], ...] = ()
        if isinstance(error, SwitchboardError):
            code, message, trailers = grpc_error_for(error)
        elif isinstance(error, NotImplementedError):
            code, message = grpc.StatusCode.UNIMPLEMENTED, str(error) or "method not implemented"
        else:
            log.error("rpc failed", method=self.info.method, error=repr(error), exc_info=error)
            code, message = grpc.StatusCode.INTERNAL, "internal error"
        self.finish(context, code, message)
        await context.abort(code, message, trailers)

    def finish(
        self,
        context: grpc.aio.ServicerContext,
        code: grpc.StatusCode | None = None,
        details: str | None = None,
    ) -> None:
        if code is None:
            code = status_code_of(context)
        info = self.info
        elapsed = time.perf_counter() - self.started
        info.handled_child(code).inc()
        info.handling.observe(elapsed)
        ok = code is grpc.StatusCode.OK
        if ok and info.quiet_ok and elapsed < SLOW_CALL_SECONDS and not _stdlib_log.isEnabledFor(logging.DEBUG):
            return  # the common case of a hot method: no log line, skip building one
        fields: dict[str, Any] = {
            "method": info.method,
            "code": code.name,
            "outcome": "ok" if ok else "error",
            "duration_ms": round(elapsed * 1000, 2),
        }
        if not ok:
            details = details or details_of(context)
            if details:
                fields["details"] = details
        if ok and info.quiet_ok and elapsed < SLOW_CALL_SECONDS:
            log.debug("rpc finished", **fields)
        elif code in _SERVER_FAULTS:
            log.error("rpc finished", **fields)
        elif code in _DEPENDENCY_FAULTS:
            log.warning("rpc finished", **fields)
        else:
            log.info("rpc finished", **fields)


def _wrap_unary_response(info: _Method, behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call = _Call(info)
        try:
            result = behavior(request, context)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            call.finish(context, grpc.StatusCode.CANCELLED)
            raise
        except grpc.aio.AbortError:
            call.finish(context)
            raise
        except Exception as error:
            await call.fail(context, error)
        call.finish(context)
        return result

    return wrapper


def _wrap_stream_response(info: _Method, behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = _Call(info)
        try:
            async with aclosing(stream_items(behavior(request, context))) as items:
                async for item in items:
                    yield item
        except asyncio.CancelledError:
            call.finish(context, grpc.StatusCode.CANCELLED)
            raise
        except grpc.aio.AbortError:
            call.finish(context)
            raise
        except Exception as error:
            await call.fail(context, error)
        call.finish(context)

    return wrapper


class ServerInterceptor(HandlerLayer):
    """Errors → status, one log line and metrics per RPC (see module docstring)."""

    def __init__(self, *, debug_when_ok: Collection[str] = ()) -> None:
        """``debug_when_ok``: full method names (``/pkg.Service/Method``) whose successful calls
        faster than :data:`SLOW_CALL_SECONDS` log at DEBUG (see ``GrpcService.debug_when_ok``)."""
        super().__init__()
        self._debug_when_ok = frozenset(debug_when_ok)

    def wrap(self, method: str, handler: MethodHandler) -> MethodHandler:
        return _wrap_handler(method, handler, quiet_ok=method in self._debug_when_ok)


def _wrap_handler(method: str, handler: grpc.RpcMethodHandler, *, quiet_ok: bool) -> grpc.RpcMethodHandler:
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        behavior = _wrap_unary_response(_Method(method, "unary", quiet_ok=quiet_ok), handler.unary_unary)
        return grpc.unary_unary_rpc_method_handler(behavior, **kwargs)
    if handler.stream_unary:
        behavior = _wrap_unary_response(_Method(method, "client_stream", quiet_ok=quiet_ok), handler.stream_unary)
        return grpc.stream_unary_rpc_method_handler(behavior, **kwargs)
    if handler.unary_stream:
        behavior = _wrap_stream_response(_Method(method, "server_stream", quiet_ok=quiet_ok), handler.unary_stream)
        return grpc.unary_stream_rpc_method_handler(behavior, **kwargs)
    if handler.stream_stream:
        behavior = _wrap_stream_response(_Method(method, "bidi_stream", quiet_ok=quiet_ok), handler.stream_stream)
        return grpc.stream_stream_rpc_method_handler(behavior, **kwargs)
    return handler
