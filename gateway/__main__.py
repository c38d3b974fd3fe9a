"""``python -m gateway``: load settings, configure logs and tracing, serve the app with uvicorn.

Listens on GATEWAY_HOST (default 127.0.0.1) : GATEWAY_PORT (default 8080). SIGTERM/SIGINT make
uvicorn stop accepting, finish in-flight requests (open SSE streams are closed) and run the
lifespan shutdown that closes the gRPC channels.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from runtime import telemetry
from runtime.config import load_settings
from runtime.logging import configure_logging, get_logger


class GatewayServer(uvicorn.Server):
    """uvicorn, except that a drained SIGTERM/SIGINT ends the process with status 0.

    Plain uvicorn re-raises the signal after its graceful shutdown (exit -15); a supervisor
    would read that as a crash, and every other Switchboard process exits 0 after a drain.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.log_level, fmt=settings.log_format, service="gateway")
    # Before the app exists: the gRPC client instrumentation patches channels opened afterwards.
    telemetry.configure_telemetry(
        settings.otel_service_name or "gateway",
        resource_attributes=telemetry.resource_attributes(settings),
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
    )
    app = create_app(settings)
    get_logger("gateway").info(
        "gateway listening", url=f"http://{settings.gateway_host}:{settings.gateway_port}/dashboard"
    )
    config = uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,  # keep runtime.logging's JSON handler
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds)),
        lifespan="on",
    )
    try:
        GatewayServer(config).run()
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
