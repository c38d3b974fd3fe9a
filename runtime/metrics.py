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

Processes without a gRPC health service (queue workers) answer their probes on the same port:
``/healthz`` and ``/readyz`` say 200 or 503 from the callables given to :func:`set_probes`
(None = fine, else the reason), so Kubernetes can probe a worker like any other pod. Until a
process sets them, both answer 503 ``not started yet``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, Counter, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

__all__ = [
    "GRPC_HANDLED",
    "GRPC_HANDLING_SECONDS",
    "GRPC_STARTED",
    "MetricsServer",
    "set_probes",
    "split_method",
    "start_metrics_server",
]

Probe = Callable[[], str | None]
"""Returns None when fine, else why not; runs on the HTTP thread, so it only reads state."""
_probes: dict[str, Probe] = {}
_PROBE_PATHS = frozenset({"/healthz", "/readyz"})

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


def set_probes(*, liveness: Probe, readiness: Probe) -> None:
    """Answer ``/healthz`` with ``liveness`` and ``/readyz`` with ``readiness`` from now on."""
    _probes["/healthz"] = liveness
    _probes["/readyz"] = readiness


def _app() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    metrics = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in _PROBE_PATHS:
            return metrics(environ, start_response)
        probe = _probes.get(path)
        try:
            reason = "not started yet" if probe is None else probe()
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
        body = json.dumps({"ok": reason is None, "reason": reason}).encode()
        status = "200 OK" if reason is None else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes and probes are not news
        pass


def start_metrics_server(port: int, host: str = "127.0.0.1") -> MetricsServer | None:
    """Serve the default registry on ``http://host:port/metrics``; ``port=0`` picks one, ``-1`` is off."""
    if port < 0:
        return None
    server = make_server(host, port, _app(), ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
