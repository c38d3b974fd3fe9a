"""Entry point: ``python -m services.notify`` serves NotifyService on NOTIFY_ADDR (default 127.0.0.1:50053).

Its queues are served by ``python -m services.notify.worker`` (``notifications``) and
``python -m services.notify.worker telegram``.
"""

from __future__ import annotations

from runtime.grpc_server import run_service
from services.notify.app import build_service
from services.notify.settings import NotifySettings

if __name__ == "__main__":
    run_service("notify", NotifySettings, build_service)
