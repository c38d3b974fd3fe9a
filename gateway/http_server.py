"""The gateway's HTTP server: uvicorn, with guards on connections that uvicorn does not have.

uvicorn times only the idle wait between two requests of a keep-alive connection
(``GATEWAY_KEEP_ALIVE_SECONDS``). The protocol built here adds, per connection:

- **Header timeout**: a connection must send a complete request line and headers within
  ``GATEWAY_HEADER_TIMEOUT_SECONDS`` of opening (or of starting its next request); otherwise it gets
  408 and is closed. Without it a client that opens a connection and sends nothing, or dribbles its
  headers, holds the connection for ever (slowloris).
- **Connections per client**: one client may hold ``GATEWAY_MAX_CONNECTIONS_PER_CLIENT`` open
  connections; the next one is answered 429 with ``Retry-After`` and closed. A connection counts
  for its address until a request on it names a valid credential; from then on it counts for that
  caller (:mod:`gateway.client_caps` attributes it through :meth:`claim`), so people behind one
  NAT are not capped together and one caller cannot spread over many addresses. Connections from
  a trusted proxy (``GATEWAY_TRUSTED_PROXIES``, the ingress) carry many clients and are not counted
  for the proxy; each request through them counts, while it runs, for its caller or for the client
  address the proxy put in ``X-Forwarded-For`` (uvicorn's proxy headers, from those addresses only).

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
import ipaddress
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import uvicorn
from prometheus_client import Counter as MetricCounter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import error_body
from gateway.settings import GatewaySettings
from runtime.errors import RequestTimeout, ResourceExhausted, grpc_status_for

__all__ = [
    "CONNECTIONS_REFUSED",
    "CONNECTION_EXTENSION",
    "LINGER_SECONDS",
    "ClientLedger",
    "Connection",
    "ConnectionGuards",
    "TrustedProxies",
    "Wire",
    "address_key",
    "body_chunk",
    "guarded_protocol",
    "server_config",
]

CONNECTIONS_REFUSED = MetricCounter(
    "switchboard_gateway_connections_refused_total",
    "Connections the gateway answered and closed before any request reached the app.",
    ["reason"],  # too_many_connections (per client) | header_timeout
)

LINGER_SECONDS = 5.0
"""How long a refused client's remaining bytes are read and dropped before the connection is closed."""


CONNECTION_EXTENSION = "switchboard.connection"
"""The ASGI scope extension under which each request finds its connection (a :class:`Connection`)."""


class Connection(Protocol):
    """What a request sees of its connection (``scope["extensions"][CONNECTION_EXTENSION]``)."""

    proxied: bool
    last_identity: tuple[Any, str] | None

    def claim(self, key: str) -> Callable[[], None] | None: ...

    def streaming_wire(self) -> Wire | None: ...


class Wire(Protocol):
    """A connection's transport, as a writer of response body bytes that skips the ASGI send chain."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


def body_chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked response body, framed as uvicorn frames the body it sends."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def address_key(host: str) -> str:
    """The key a client without a valid credential is counted under."""
    return f"address:{host}"


def _noop() -> None:
    return None


class TrustedProxies:
    """The addresses and CIDR ranges of ``GATEWAY_TRUSTED_PROXIES``."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.entries = tuple(entries)
        self._networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, host: object) -> bool:
        if not self._networks or not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)


class ClientLedger:
    """Open connections per client key (``address:…`` or ``caller:…``), for one server."""

    def __init__(self, cap: int) -> None:
        self.cap = cap  # 0: no cap
        self.counts: Counter[str] = Counter()

    def take(self, key: str) -> bool:
        if self.cap and self.counts[key] >= self.cap:
            return False
        self.counts[key] += 1
        return True

    def give(self, key: str) -> None:
        self.counts[key] -= 1
        if self.counts[key] <= 0:
            del self.counts[key]


@dataclass(frozen=True, slots=True)
class ConnectionGuards:
    header_timeout_seconds: float
    max_connections_per_client: int  # 0: no cap
    retry_after_seconds: int
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> ConnectionGuards:
        return cls(
            header_timeout_seconds=settings.gateway_header_timeout_seconds,
            max_connections_per_client=settings.gateway_max_connections_per_client,
            retry_after_seconds=settings.gateway_retry_after_seconds,
            trusted_proxies=tuple(settings.gateway_trusted_proxies),
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
    ledger = ClientLedger(guards.max_connections_per_client)
    trusted = TrustedProxies(guards.trusted_proxies)
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
            self.proxied = False
            self.ledger = ledger
            self.last_identity: tuple[Any, str] | None = None
            """(what identified the last request, its key): :mod:`gateway.client_caps`' memo."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            lingering = self._lingering = _LingeringTransport(transport, self._request_incomplete)
            super().connection_made(lingering)  # type: ignore[arg-type]
            client = self.client[0] if self.client else ""
            if client in trusted:
                self.proxied = True  # many clients' requests: each counts while it runs (claim)
            elif not ledger.take(address_key(client)):
                CONNECTIONS_REFUSED.labels("too_many_connections").inc()
                lingering.write(too_many)
                lingering.linger()
                return
            else:
                self._counted_as = address_key(client)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            if self._counted_as is not None:
                ledger.give(self._counted_as)
                self._counted_as = None
            super().connection_lost(exc)

        def claim(self, key: str) -> Callable[[], None] | None:
            """Count this connection for client ``key`` from now on (from a trusted proxy: count the
            current request until the returned callable is called); None when ``key`` is at its cap."""
            if self.proxied:
                return (lambda: ledger.give(key)) if ledger.take(key) else None
            if key == self._counted_as:
                return _noop
            if not ledger.take(key):
                return None
            if self._counted_as is not None:
                ledger.give(self._counted_as)
            self._counted_as = key
            return _noop

        def data_received(self, data: bytes) -> None:
            if self._lingering is not None and self._lingering.lingering:
                return  # a refused client's remaining bytes: dropped
            super().data_received(data)

        def eof_received(self) -> bool | None:  # type: ignore[override]
            if self._lingering is not None and self._lingering.lingering:
                self._lingering.close_now()
            return None

        def streaming_wire(self) -> Wire | None:
            """The transport, while this connection's response is a chunked body under way: bytes
            framed by :func:`body_chunk` and written to it go out as more of that body, as the
            ASGI send would write them (the SSE fan-out writes one frame to many connections so,
            without a task wake and a pass through the middleware per connection). None when the
            response has not started, is complete, has a length or is to a HEAD (not chunked)."""
            cycle = self.cycle
            if cycle is None or not cycle.response_started or cycle.response_complete or cycle.disconnected:
                return None
            if cycle.chunked_encoding is not True or self._lingering is None:
                return None
            return self._lingering.transport

        def _request_incomplete(self) -> bool:
            return self.cycle is not None and self.cycle.more_body

        def on_message_begin(self) -> None:
            super().on_message_begin()
            # uvicorn's scope has no extensions of its own; client_caps finds the connection here.
            self.scope["extensions"] = {CONNECTION_EXTENSION: self}  # type: ignore[dict-item]
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

    @property
    def transport(self) -> asyncio.Transport:
        """The real transport (lingering matters only to a refusal, before any response is under way)."""
        return self._transport

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
        # X-Forwarded-For / -Proto are believed only from the configured proxies (uvicorn's own default
        # would trust 127.0.0.1, or FORWARDED_ALLOW_IPS).
        proxy_headers=bool(settings.gateway_trusted_proxies),
        forwarded_allow_ips=list(settings.gateway_trusted_proxies) or None,
        timeout_keep_alive=settings.gateway_keep_alive_seconds,
        log_config=None,  # keep runtime.logging's JSON handler
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds)),
        lifespan="on",
    )
