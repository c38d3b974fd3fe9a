"""Prometheus metrics: one ``/metrics`` endpoint per process, on the default registry.

Services declare their own metrics with ``prometheus_client`` at module level (names
``switchboard_<service>_<what>_<unit>``) and never start a server themselves:
``run_service`` calls :func:`start_metrics_server` with ``METRICS_PORT`` (``0`` = a free port
the OS picks, logged as ``metrics listening``; ``-1`` = off).

The gRPC server interceptor feeds the standard server metrics defined here, named as in
go-grpc-prometheus so existing dashboards work:

- ``grpc_server_started_total{grpc_service, grpc_method, grpc_type}``
- ``grpc_server_handled_total{grpc_service, grpc_method, grpc_type, grpc_code}``
- ``grpc_server_handling_seconds{grpc_service, grpc_method, grpc_type}`` (histogram)
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server

__all__ = [
    "GRPC_HANDLED",
    "GRPC_HANDLING_SECONDS",
    "GRPC_STARTED",
    "MetricsServer",
    "split_method",
    "start_metrics_server",
]

GRPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server.",
    ["grpc_service", "grpc_method", "grpc_type"],
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status, in seconds.",
    ["grpc_service", "grpc_method", "grpc_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def split_method(full_method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or full_method


class MetricsServer:
    """A running ``/metrics`` HTTP server (a daemon thread); ``port`` is the bound port."""

    def __init__(self, server: Any, thread: Any) -> None:
        self._server = server
        self._thread = thread
        self.port: int = int(server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=1.0)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> MetricsServer | None:
    """Serve the default registry on ``http://host:port/metrics``; ``port=0`` picks one, ``-1`` is off."""
    if port < 0:
        return None
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    return MetricsServer(server, thread)
