"""A cap on the Server-Sent-Event streams one client holds open at once.

Each open stream holds a gRPC watch on a backend for as long as the client stays. One client address
may hold ``GATEWAY_MAX_STREAMS_PER_CLIENT`` of them; the next request to a stream route is answered
429 with ``Retry-After`` before the route runs (so no backend watch is opened for it). The stream
routes are the app's routes declared with ``response_class=EventSourceResponse``, found once.
"""

from __future__ import annotations

import re
from collections import Counter

from fastapi.routing import iter_route_contexts
from sse_starlette import EventSourceResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import error_response
from runtime.errors import ResourceExhausted, grpc_status_for

__all__ = ["StreamCaps"]


def _stream_patterns(routes: list[BaseRoute]) -> tuple[re.Pattern[str], ...]:
    served = (context.route for context in iter_route_contexts(routes))  # included routers flattened
    return tuple(
        route.path_regex
        for route in served
        if isinstance(route, Route) and getattr(route, "response_class", None) is EventSourceResponse
    )


class StreamCaps:
    """Pure ASGI middleware counting open stream requests per client address."""

    def __init__(self, app: ASGIApp, *, max_per_client: int, retry_after_seconds: int) -> None:
        self.app = app
        self.max_per_client = max_per_client
        self.retry_after_seconds = retry_after_seconds
        self.open_by_client: Counter[str] = Counter()
        self._patterns: tuple[re.Pattern[str], ...] | None = None

    def _is_stream(self, scope: Scope) -> bool:
        if self._patterns is None:
            self._patterns = _stream_patterns(scope["app"].routes)
        path: str = scope["path"]
        return any(pattern.match(path) for pattern in self._patterns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.max_per_client or not self._is_stream(scope):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else ""
        if self.open_by_client[client] >= self.max_per_client:
            await self._refuse(send)
            return
        self.open_by_client[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open_by_client[client] -= 1
            if self.open_by_client[client] <= 0:
                del self.open_by_client[client]

    async def _refuse(self, send: Send) -> None:
        error = ResourceExhausted(f"too many open streams from this client (at most {self.max_per_client})")
        response = error_response(
            grpc_status_for(error),
            error.message,
            {"limit": self.max_per_client, "retryAfterSeconds": self.retry_after_seconds},
        )
        response.headers["Retry-After"] = str(self.retry_after_seconds)
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
