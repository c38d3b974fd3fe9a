"""The gateway's HTTP server: uvicorn, with guards on connections that uvicorn does not have.

uvicorn times only the idle wait between two requests of a keep-alive connection
(``GATEWAY_KEEP_ALIVE_SECONDS``). The protocol built here adds, per connection:

- **Header timeout**: a connection must send a complete request line and headers within
  ``GATEWAY_HEADER_TIMEOUT_SECONDS`` of opening (or of starting its next request); otherwise it gets
  408 and is closed. Without it a client that opens a connection and sends nothing, or dribbles its
  headers, holds the connection for ever (slowloris).
- **Connections per client**: one client address may hold ``GATEWAY_MAX_CONNECTIONS_PER_CLIENT`` open
  connections; the next one is answered 429 with ``Retry-After`` and closed before it is read.

Every refusal sent while the client is still sending (a 413 mid-body, a 429, a 408) ends in a
*lingering close*, as nginx does: our side of the connection is shut after the answer and whatever the
client still sends is read and dropped for up to ``LINGER_SECONDS``. Closing at once with unread bytes
makes the kernel reset the connection, and a reset destroys the answer in the client's buffers before
it has read it; a client that writes its whole body before reading (httpx does) would never see why.

The slow *body* is timed in the app (``gateway.request_body``), where the 408 reaches the route.
Both guards subclass uvicorn's httptools protocol (the one uvicorn picks when httptools is installed,
as it is here) and hook only its parser callbacks and connection events.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from prometheus_client import Counter as MetricCounter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import error_body
from gateway.settings import GatewaySettings
from runtime.errors import RequestTimeout, ResourceExhausted, grpc_status_for

__all__ = ["CONNECTIONS_REFUSED", "LINGER_SECONDS", "ConnectionGuards", "guarded_protocol", "server_config"]

CONNECTIONS_REFUSED = MetricCounter(
    "switchboard_gateway_connections_refused_total",
    "Connections the gateway answered and closed before any request reached the app.",
    ["reason"],  # too_many_connections (per client) | header_timeout
)

LINGER_SECONDS = 5.0
"""How long a refused client's remaining bytes are read and dropped before the connection is closed."""


@dataclass(frozen=True, slots=True)
class ConnectionGuards:
    header_timeout_seconds: float
    max_connections_per_client: int  # 0: no cap
    retry_after_seconds: int

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> ConnectionGuards:
        return cls(
            header_timeout_seconds=settings.gateway_header_timeout_seconds,
            max_connections_per_client=settings.gateway_max_connections_per_client,
            retry_after_seconds=settings.gateway_retry_after_seconds,
        )


def _raw_response(status: str, error: Exception, message: str, extra_headers: bytes = b"") -> bytes:
    body = json.dumps(error_body(grpc_status_for(error), message), separators=(",", ":")).encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n".encode()
        + extra_headers
        + b"connection: close\r\n\r\n"
        + body
    )


def guarded_protocol(guards: ConnectionGuards) -> type[asyncio.Protocol]:
    """A protocol class for one server; the per-client connection counts live with it."""
    open_by_client: Counter[str] = Counter()
    too_many = _raw_response(
        "429 Too Many Requests",
        ResourceExhausted(""),
        f"too many connections from this client (at most {guards.max_connections_per_client})",
        f"retry-after: {guards.retry_after_seconds}\r\n".encode(),
    )
    too_slow = _raw_response(
        "408 Request Timeout",
        RequestTimeout(""),
        f"request headers not received within {guards.header_timeout_seconds:g} s",
    )

    class GuardedHttpProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._counted_as: str | None = None
            self._header_timer: asyncio.TimerHandle | None = None
            self._lingering: _LingeringTransport | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            lingering = self._lingering = _LingeringTransport(transport, self._request_incomplete)
            super().connection_made(lingering)  # type: ignore[arg-type]
            client = self.client[0] if self.client else ""
            cap = guards.max_connections_per_client
            if cap and open_by_client[client] >= cap:
                CONNECTIONS_REFUSED.labels("too_many_connections").inc()
                lingering.write(too_many)
                lingering.linger()
                return
            open_by_client[client] += 1
            self._counted_as = client
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            if self._counted_as is not None:
                open_by_client[self._counted_as] -= 1
                if open_by_client[self._counted_as] <= 0:
                    del open_by_client[self._counted_as]
                self._counted_as = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._lingering is not None and self._lingering.lingering:
                return  # a refused client's remaining bytes: dropped
            super().data_received(data)

        def eof_received(self) -> bool | None:  # type: ignore[override]
            if self._lingering is not None and self._lingering.lingering:
                self._lingering.close_now()
            return None

        def _request_incomplete(self) -> bool:
            return self.cycle is not None and self.cycle.more_body

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._disarm_header_timer()
            super().on_headers_complete()

        def _arm_header_timer(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(guards.header_timeout_seconds, self._headers_too_slow)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self._lingering is not None and not self._lingering.is_closing():
                CONNECTIONS_REFUSED.labels("header_timeout").inc()
                self._lingering.write(too_slow)
                self._lingering.linger()

    return GuardedHttpProtocol


class _LingeringTransport:
    """The connection's transport as uvicorn sees it: ``close()`` while the client is still sending a
    request lingers (see the module docstring); everything else goes straight to the real transport."""

    def __init__(self, transport: asyncio.Transport, request_incomplete: Callable[[], bool]) -> None:
        self._transport = transport
        self._request_incomplete = request_incomplete
        self._timer: asyncio.TimerHandle | None = None
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self._request_incomplete() and not self.lingering:
            self.linger()
        else:
            self.close_now()

    def linger(self) -> None:
        """Shut our side once the answer is written, then drop what arrives until the client closes
        or ``LINGER_SECONDS`` pass."""
        if self.lingering or self._transport.is_closing():
            return
        self.lingering = True
        if self._transport.can_write_eof():
            self._transport.write_eof()
        self._transport.resume_reading()
        self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, self.close_now)

    def close_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.close()


def server_config(
    app: Any, settings: GatewaySettings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """The uvicorn config ``python -m gateway`` serves with (tests pass their own host and port)."""
    return uvicorn.Config(
        app,
        host=host or settings.gateway_host,
        port=port if port is not None else settings.gateway_port,
        http=guarded_protocol(ConnectionGuards.from_settings(settings)),
        timeout_keep_alive=settings.gateway_keep_alive_seconds,
        log_config=None,  # keep runtime.logging's JSON handler
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds)),
        lifespan="on",
    )
