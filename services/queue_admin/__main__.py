"""Entry point: ``python -m services.queue_admin`` (listens on QUEUE_ADMIN_ADDR, default 127.0.0.1:50055)."""

from __future__ import annotations

from runtime.grpc_server import run_service
from services.queue_admin.app import build_service
from services.queue_admin.settings import QueueAdminSettings

if __name__ == "__main__":
    run_service("queue_admin", QueueAdminSettings, build_service)
