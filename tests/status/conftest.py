"""Status service fixtures: real status apps (in-process gRPC servers on loopback) on real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from switchboard.status.v1 import status_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import on_any_port
from runtime.grpc_server import GrpcServer
from services.status.app import create_app
from tests.status.harness import MakeStatus, RunningStatus, settings_for


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"


@pytest.fixture
async def make_status(redis_url: str, sqlite_url: str) -> AsyncIterator[MakeStatus]:
    """Start status replicas (same Redis and database unless overridden) serving gRPC on loopback."""
    running: list[RunningStatus] = []

    async def make(**overrides: Any) -> RunningStatus:
        settings = settings_for(redis_url, sqlite_url, **overrides)
        app = await create_app(settings)
        await app.start()
        server = GrpcServer(
            on_any_port(app.grpc_service()),
            authenticator=authenticator_for_tests(),
            grace_seconds=0.2,
            health_interval_seconds=0.2,
        )
        port = await server.start()
        address = f"127.0.0.1:{port}"
        channel = aio_channel(address)
        status = RunningStatus(app, server, channel, status_pb2_grpc.StatusServiceStub(channel), address)
        running.append(status)
        return status

    yield make
    for status in reversed(running):
        await status.channel.close()
        await status.server.stop()


@pytest.fixture
async def status(make_status: MakeStatus) -> RunningStatus:
    return await make_status()
