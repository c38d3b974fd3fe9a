"""Caps per client: open connections and open Server-Sent-Event streams, with 429 and Retry-After.

A client is the caller a request's credential names (``caller:<principal>``: an API key's id, an
OIDC subject, the bootstrap token), checked by :meth:`runtime.auth.http.HttpAuth.identify`; a
request without a valid credential is its address (``address:<ip>``: the peer, or through a
trusted proxy the address in ``X-Forwarded-For``, see ``GATEWAY_TRUSTED_PROXIES``). Keying on the
caller means that people behind one NAT or one ingress are not capped together, and that one
caller does not get a fresh allowance from each address it uses.

- **Connections** (``GATEWAY_MAX_CONNECTIONS_PER_CLIENT``): each request hands its client to its
  connection (:meth:`gateway.http_server.Connection.claim`), which counts from then on for that
  client; a client already at its cap gets 429 and the connection is closed. Through a trusted
  proxy the request itself counts while it runs (the proxy holds the client's connection).
- **Streams** (``GATEWAY_MAX_STREAMS_PER_CLIENT``): each open stream holds a gRPC watch on a
  backend for as long as the client stays; past the cap a request to a stream route is 429 before
  the route runs (so no backend watch is opened for it). The stream routes are the app's routes
  declared with ``response_class=EventSourceResponse``, found once.

Identifying a caller costs what authenticating it costs (a cached digest lookup); a connection
remembers the last credential it saw and its client, so a keep-alive connection pays it once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi.routing import iter_route_contexts
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import error_response
from gateway.http_server import CONNECTION_EXTENSION, CONNECTIONS_REFUSED, Connection, address_key
from runtime.auth.http import HttpAuth
from runtime.errors import ResourceExhausted, grpc_status_for

__all__ = ["ClientCaps"]


def _stream_patterns(routes: list[BaseRoute]) -> tuple[re.Pattern[str], ...]:
    served = (context.route for context in iter_route_contexts(routes))  # included routers flattened
    return tuple(
        route.path_regex
        for route in served
        if isinstance(route, Route) and getattr(route, "response_class", None) is EventSourceResponse
    )


def _credential(scope: Scope) -> tuple[bytes, ...]:
    """What identifies the request's caller: its Authorization and Cookie headers and its address."""
    wanted = [b"", b""]
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            wanted[0] = value
        elif name == b"cookie":
            wanted[1] = value
    client = scope.get("client")
    return (*wanted, (client[0] if client else "").encode())


class ClientCaps:
    """Pure ASGI middleware enforcing both caps (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, max_connections_per_client: int, max_streams_per_client: int, retry_after_seconds: int
    ) -> None:
        self.app = app
        self.max_connections = max_connections_per_client
        self.max_streams = max_streams_per_client
        self.retry_after_seconds = retry_after_seconds
        self.open_streams: Counter[str] = Counter()
        self._patterns: tuple[re.Pattern[str], ...] | None = None

    def _is_stream(self, scope: Scope) -> bool:
        if self._patterns is None:
            self._patterns = _stream_patterns(scope["app"].routes)
        path: str = scope["path"]
        return any(pattern.match(path) for pattern in self._patterns)

    async def client_key(self, scope: Scope, connection: Connection | None) -> str:
        """``caller:<principal>`` for a valid credential, else ``address:<ip>``."""
        credential = _credential(scope)
        if connection is not None and connection.last_identity is not None:
            seen, key = connection.last_identity
            if seen == credential:
                return key
        auth: HttpAuth = scope["app"].state.auth
        principal = await auth.identify(Request(scope))
        key = f"caller:{principal.name}" if principal is not None else address_key(credential[2].decode())
        if connection is not None:
            connection.last_identity = (credential, key)
        return key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection: Connection | None = scope.get("extensions", {}).get(CONNECTION_EXTENSION)
        counts_connection = connection is not None and self.max_connections > 0
        stream = self.max_streams > 0 and self._is_stream(scope)
        if not (counts_connection or stream):
            await self.app(scope, receive, send)
            return
        key = await self.client_key(scope, connection)
        release: Callable[[], None] | None = None
        if counts_connection:
            assert connection is not None
            release = connection.claim(key)
            if release is None:
                CONNECTIONS_REFUSED.labels("too_many_connections").inc()
                await self._refuse(send, "connections", self.max_connections, close=not connection.proxied)
                return
        try:
            if stream:
                await self._run_stream(key, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            if release is not None:
                release()

    async def _run_stream(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        if self.open_streams[key] >= self.max_streams:
            await self._refuse(send, "streams", self.max_streams, close=False)
            return
        self.open_streams[key] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open_streams[key] -= 1
            if self.open_streams[key] <= 0:
                del self.open_streams[key]

    async def _refuse(self, send: Send, what: str, limit: int, *, close: bool) -> None:
        error = ResourceExhausted(f"too many open {what} from this client (at most {limit})")
        details: dict[str, Any] = {"limit": limit, "retryAfterSeconds": self.retry_after_seconds}
        response = error_response(grpc_status_for(error), error.message, details)
        response.headers["Retry-After"] = str(self.retry_after_seconds)
        if close:
            response.headers["Connection"] = "close"
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
