"""Prometheus metrics of the gateway's HTTP traffic, as a plain ASGI middleware.

Labels use the route *template* (``/api/queue-status/operators/{memberId:path}``), never the raw
path, so member ids cannot blow up the series count; unmatched paths count as ``<unmatched>``,
static files as ``<other>``.
A plain ASGI middleware (not ``BaseHTTPMiddleware``) so streaming responses pass through untouched.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HTTP_IN_FLIGHT", "HTTP_REQUESTS", "HTTP_REQUEST_SECONDS", "HttpMetricsMiddleware"]

HTTP_REQUESTS = Counter(
    "switchboard_gateway_http_requests_total",
    "HTTP requests answered by the gateway.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "switchboard_gateway_http_request_duration_seconds",
    "Time from request to the end of the response body, in seconds.",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
HTTP_IN_FLIGHT = Gauge("switchboard_gateway_http_requests_in_flight", "HTTP requests being answered now.")


def _route_template(scope: Scope) -> str:
    # The router writes the matched route into this same scope dict while handling the request.
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "<other>" if scope.get("endpoint") is not None else "<unmatched>"


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_IN_FLIGHT.dec()
            route = _route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)
