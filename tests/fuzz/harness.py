"""The real services the fuzzers aim at: status and queue admin in-process on real Redis and
SQLite, health-only loopback servers for the rest, and the gateway in front of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from devsupport.auth import authenticator_for_tests
from gateway.settings import BACKEND_NAMES
from runtime.grpc_server import GrpcServer
from services.status.app import create_app as create_status_app
from tests.gateway.fake_status import GrpcBackend, start_backend
from tests.queue_admin.harness import AdminServer, start_admin_server, stop_admin_server
from tests.status.harness import settings_for

REAL = ("status", "queue_admin")
"""Backends served for real; routes and RPCs of the others (media, notify, ami_ingest) are not fuzzed here."""


@dataclass
class RealBackends:
    addresses: dict[str, str]
    status_server: GrpcServer
    admin: AdminServer
    others: list[GrpcBackend]


@asynccontextmanager
async def real_backends(redis_url: str, data_dir: Path) -> AsyncIterator[RealBackends]:
    status_app = await create_status_app(settings_for(redis_url, f"sqlite+aiosqlite:///{data_dir / 'status.db'}"))
    await status_app.start()
    status_server = GrpcServer(
        status_app.grpc_service(),
        authenticator=authenticator_for_tests(),
        grace_seconds=0.2,
        health_interval_seconds=0.2,
    )
    status_port = await status_server.start()
    admin = await start_admin_server(redis_url, data_dir)
    others = {name: await start_backend(None) for name in BACKEND_NAMES if name not in REAL}
    addresses = {name: backend.address for name, backend in others.items()}
    addresses |= {"status": f"127.0.0.1:{status_port}", "queue_admin": admin.address}
    try:
        yield RealBackends(addresses, status_server, admin, list(others.values()))
    finally:
        for backend in others.values():
            await backend.stop()
        await stop_admin_server(admin)
        await status_server.stop()
