"""The cap on the RPCs one gRPC server runs at once (``GRPC_MAX_CONCURRENT_RPCS``).

A call arriving while ``limit`` calls are running (long streams included: Ingest, every watch) is
refused at once with RESOURCE_EXHAUSTED, which clients retry with backoff. grpc.aio's own
``maximum_concurrent_rpcs`` refuses the same way but inside gRPC core, where no interceptor, log
line or metric sees it; this interceptor does the refusing itself so that each refusal is counted
in ``switchboard_grpc_server_calls_refused_total{grpc_service,grpc_method}`` and logged as
``calls refused past the concurrency cap`` — at most once per :data:`LOG_EVERY_SECONDS`, with the
number refused since the last such line, so an overload does not also flood the log.

It is the outermost interceptor: a refused call costs no span, no handler and no other
bookkeeping. ``grpc.health.v1.Health/Check`` is never refused: a probe failing because the server
is busy would get a working pod restarted.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio
from prometheus_client import Counter

from runtime.grpc_layers import HandlerLayer, UnaryBehavior, unary_wrapped
from runtime.grpc_types import MethodHandler, ServicerContext
from runtime.grpc_wrap import Around, wrap_around
from runtime.logging import get_logger
from runtime.metrics import split_method

__all__ = ["CALLS_REFUSED", "LOG_EVERY_SECONDS", "CallCap"]

log = get_logger("runtime.grpc")

CALLS_REFUSED = Counter(
    "switchboard_grpc_server_calls_refused_total",
    "RPCs refused with RESOURCE_EXHAUSTED because the server already ran GRPC_MAX_CONCURRENT_RPCS calls.",
    ["grpc_service", "grpc_method"],
)

LOG_EVERY_SECONDS = 5.0
"""At most one refusal log line per this many seconds (it carries the count since the last one)."""

_NEVER_REFUSED = frozenset({"/grpc.health.v1.Health/Check"})


class CallCap(HandlerLayer):
    """Refuses calls past ``limit`` running ones (see the module docstring); ``limit`` > 0."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive (no cap: do not install the interceptor)")
        super().__init__()
        self.limit = limit
        self.running = 0
        self._unlogged = 0
        self._last_logged = float("-inf")

    def wrap(self, method: str, handler: MethodHandler) -> MethodHandler:
        if method in _NEVER_REFUSED:
            return handler
        # A unary answer needs no context manager around it (an async generator per call).
        return unary_wrapped(handler, self._capped(method)) or wrap_around(handler, self._slot(method))

    def _refuse(self, method: str) -> Callable[[ServicerContext], Awaitable[None]]:
        """Counts, logs (at most every LOG_EVERY_SECONDS) and aborts a call past the cap."""
        refused = CALLS_REFUSED.labels(*split_method(method))
        message = f"Concurrent RPC limit exceeded ({self.limit} calls running)"

        async def refuse(context: ServicerContext) -> None:
            refused.inc()
            self._note_refusal(method)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)

        return refuse

    def _capped(self, method: str) -> Callable[[UnaryBehavior], UnaryBehavior]:
        refuse = self._refuse(method)

        def wrap(behavior: UnaryBehavior) -> UnaryBehavior:
            async def capped(request: Any, context: ServicerContext) -> Any:
                if self.running >= self.limit:
                    await refuse(context)
                self.running += 1
                try:
                    result = behavior(request, context)
                    return await result if inspect.isawaitable(result) else result
                finally:
                    self.running -= 1

            return capped

        return wrap

    def _slot(self, method: str) -> Around:
        refuse = self._refuse(method)

        @asynccontextmanager
        async def slot(context: ServicerContext) -> AsyncIterator[None]:
            if self.running >= self.limit:
                await refuse(context)
            self.running += 1
            try:
                yield
            finally:
                self.running -= 1

        return slot

    def _note_refusal(self, method: str) -> None:
        self._unlogged += 1
        now = time.monotonic()
        if now - self._last_logged < LOG_EVERY_SECONDS:
            return
        log.warning(
            "calls refused past the concurrency cap",
            method=method,
            refused=self._unlogged,
            limit=self.limit,
            since_seconds=None if self._last_logged == float("-inf") else round(now - self._last_logged, 1),
        )
        self._unlogged = 0
        self._last_logged = now
