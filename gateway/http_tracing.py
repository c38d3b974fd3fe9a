"""The server span of every HTTP request, as a plain ASGI middleware.

The span is the one opentelemetry-instrumentation-asgi's ``OpenTelemetryMiddleware`` makes with
its default (v1.11 HTTP) semantic conventions: named ``"<METHOD> <path>"``, kind SERVER (INTERNAL
under a span already current), the caller's ``traceparent`` as parent, ``http.scheme``,
``http.host``, ``net.host.port``, ``http.flavor``, ``http.target``, ``http.url`` (credentials and
signed query parameters redacted), ``http.method``, ``http.server_name``, ``http.user_agent``
(``user_agent.synthetic.type`` for bots and test agents), ``net.peer.ip`` and ``net.peer.port``,
then ``http.status_code`` and an ERROR status from 500 on; an exception escaping the app is
recorded on it. The span is current while the app runs, so the gRPC client spans below it
continue the trace. Excluded URLs (a regex searched in the URL) get no span.

Built more cheaply than the library's: it read every request header once per attribute it
looked up (decoding each), set every attribute twice, and kept per-request metrics state for
OpenTelemetry metrics this process does not export (request metrics are Prometheus's:
:mod:`gateway.http_metrics`); about a fifth of the app's time on a hot read. Here the headers
are read in one pass, the span is started with its attributes, and ``send`` is wrapped once.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asgi.version import __version__ as _ASGI_VERSION
from opentelemetry.instrumentation.propagators import get_global_response_propagator
from opentelemetry.instrumentation.utils import http_status_to_status_code
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.http import (
    ExcludeList,
    detect_synthetic_user_agent,
    parse_excluded_urls,
    redact_url,
    sanitize_method,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HttpTracing"]

_TRACER_NAME = "opentelemetry.instrumentation.asgi"
"""The spans' instrumentation scope: the library's, as before (with its version and schema)."""
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.11.0"


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except ValueError:
        return value.decode("unicode_escape")


def _server_host(scope: Scope) -> tuple[str, Any]:
    server = scope.get("server") or ["0.0.0.0", 80]
    port = server[1]
    return server[0] + (":" + str(port) if str(port) != "80" else ""), port


_STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"})


def _method(method: str) -> str | None:
    """``sanitize_method``: a standard method as it is, without its environment lookup."""
    upper = method.upper()
    return upper if upper in _STANDARD_METHODS else sanitize_method(method)


def _redacted(url: str) -> str:
    """``redact_url``, which parses the URL twice: one without ``@`` and ``?`` has nothing to redact."""
    return redact_url(url) if "@" in url or "?" in url else url


def _span_name(scope: Scope) -> str:
    path = scope.get("path", "").strip()
    method = _method(scope.get("method", "").strip())
    if method == "_OTHER":
        method = "HTTP"
    if method and path:
        return f"{method} {path}"
    return path or method or ""


class HttpTracing:
    """Pure ASGI middleware: one server span per HTTP/WebSocket request (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, excluded_urls: str = "", tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        self.app = app
        self.excluded: ExcludeList = parse_excluded_urls(excluded_urls)
        self.tracer = trace.get_tracer(_TRACER_NAME, _ASGI_VERSION, tracer_provider, schema_url=_SCHEMA_URL)
        self.fields: tuple[object, frozenset[str]] = (None, frozenset())

    def _carries_context(self, headers: dict[str, list[str]]) -> bool:
        """Whether any header the configured propagators read is there (most requests carry none,
        and asking the propagators costs a lookup per field)."""
        textmap = propagate.get_global_textmap()
        if self.fields[0] is not textmap:
            self.fields = (textmap, frozenset(textmap.fields))
        return not self.fields[1].isdisjoint(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, list[str]] = {}  # every value of each header, as propagators read them
        for raw_name, raw_value in scope.get("headers") or ():
            headers.setdefault(_text(raw_name).lower(), []).append(_text(raw_value))
        hosts = headers.get("host", [])
        server_host, port = _server_host(scope)
        url = scope.get("scheme", "http") + "://" + (hosts[0] if hosts else server_host) + scope.get("path", "")
        if self.excluded.url_disabled(url):
            await self.app(scope, receive, send)
            return
        user_agent = headers.get("user-agent")
        attributes = _request_attributes(scope, server_host, port, url, hosts, user_agent[0] if user_agent else None)
        token = None
        if trace.get_current_span() is trace.INVALID_SPAN:
            parent = propagate.extract(headers) if self._carries_context(headers) else otel_context.Context()
            token = otel_context.attach(parent)
            kind = trace.SpanKind.SERVER
        else:
            parent = otel_context.get_current()
            kind = trace.SpanKind.INTERNAL
        span = self.tracer.start_span(_span_name(scope), context=parent, kind=kind, attributes=attributes)
        response_propagator = get_global_response_propagator()
        trailers = False

        async def traced_send(message: Message) -> None:
            nonlocal trailers
            kind = message["type"]
            if kind == "http.response.start":
                trailers = bool(message.get("trailers", False))
                _set_status_code(span, message["status"])
            elif kind == "websocket.send":
                _set_status_code(span, 200)
            if response_propagator is not None:
                response_propagator.inject(
                    message,
                    context=trace.set_span_in_context(span, otel_context.Context()),
                    setter=_MESSAGE_SETTER,
                )
            await send(message)
            if (kind == "http.response.body" and not trailers and not message.get("more_body", False)) or (
                kind == "http.response.trailers" and not message.get("more_trailers", False)
            ):
                span.end()

        try:
            with trace.use_span(span, end_on_exit=False):
                await self.app(scope, receive, traced_send)
        finally:
            if token is not None:
                otel_context.detach(token)
            if span.is_recording():
                span.end()


def _request_attributes(
    scope: Scope, server_host: str, port: Any, url: str, hosts: list[str], user_agent: str | None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    scheme = scope.get("scheme")
    if scheme:
        attributes["http.scheme"] = scheme
    if server_host:
        attributes["http.host"] = server_host
    if port:
        with contextlib.suppress(ValueError, TypeError):
            attributes["net.host.port"] = int(port)
    flavor = scope.get("http_version")
    if flavor:
        attributes["http.flavor"] = flavor
    path = scope.get("path")
    if path:
        attributes["http.target"] = path
    query = scope.get("query_string")
    if query and url:
        url += "?" + urllib.parse.unquote(query.decode("utf8") if isinstance(query, bytes) else query)
    if url:
        attributes["http.url"] = _redacted(url)
    method = scope.get("method", "")
    if method:
        normalized = (_method(method) or "").strip()
        if normalized:
            attributes["http.method"] = normalized
    if hosts:
        attributes["http.server_name"] = ",".join(hosts)
    if user_agent:
        attributes["http.user_agent"] = user_agent
        synthetic = detect_synthetic_user_agent(user_agent)
        if synthetic:
            attributes["user_agent.synthetic.type"] = synthetic
    client = scope.get("client")
    if client is not None:
        if client[0]:
            attributes["net.peer.ip"] = client[0]
        if client[1]:
            with contextlib.suppress(ValueError, TypeError):
                attributes["net.peer.port"] = int(client[1])
    return attributes


def _set_status_code(span: trace.Span, status_code: Any) -> None:
    if not status_code or not span.is_recording():
        return
    try:
        code = int(status_code)
    except ValueError:
        span.set_status(Status(StatusCode.ERROR, "Non-integer HTTP status: " + str(status_code)))
        return
    span.set_attribute("http.status_code", code)
    span.set_status(Status(http_status_to_status_code(code, server_span=True)))


class _MessageSetter:
    """Response headers from a response propagator (``OTEL_PYTHON_...`` / ``set_global_response_propagator``)."""

    def set(self, carrier: dict[str, Any], key: str, value: str) -> None:
        headers = carrier.get("headers")
        if not headers:
            headers = []
            carrier["headers"] = headers
        headers.append([key.lower().encode(), value.encode()])


_MESSAGE_SETTER = _MessageSetter()
