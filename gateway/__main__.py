"""``python -m gateway``: load settings, the process bootstrap (runtime.process), serve the app with uvicorn.

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
from gateway.http_server import server_config
from gateway.settings import GatewaySettings
from runtime.config import load_settings
from runtime.logging import get_logger
from runtime.process import run_process


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


async def serve(settings: GatewaySettings) -> None:
    # Created after the bootstrap set up tracing: the gRPC client instrumentation patches only
    # channels opened afterwards.
    app = create_app(settings)
    get_logger("gateway").info(
        "gateway listening", url=f"http://{settings.gateway_host}:{settings.gateway_port}/dashboard"
    )
    await GatewayServer(server_config(app, settings)).serve()


def main() -> None:
    settings = load_settings(GatewaySettings)
    # The app serves /metrics on its own port: no separate metrics server.
    run_process("gateway", settings, lambda: serve(settings), metrics=False)


if __name__ == "__main__":
    main()
