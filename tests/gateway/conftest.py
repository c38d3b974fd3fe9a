"""Gateway fixtures: real grpc.aio backends on loopback (fake StatusService + health), the app
wired to them, an in-process httpx client, and a live uvicorn server for SSE and the browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import BACKEND_NAMES, GatewaySettings
from tests.gateway.fake_status import FakeStatusService, start_backend
from tests.gateway.harness import Backends, LiveGateway, client_for, sample_center, served


@pytest.fixture
def fake_status() -> FakeStatusService:
    fake = FakeStatusService()
    sample_center(fake)
    return fake


@pytest.fixture
async def backends(fake_status: FakeStatusService) -> AsyncIterator[Backends]:
    servers = {name: await start_backend(fake_status if name == "status" else None) for name in BACKEND_NAMES}
    try:
        yield Backends(servers)
    finally:
        for server in servers.values():
            await server.stop()


@pytest.fixture
def settings(backends: Backends) -> GatewaySettings:
    return backends.settings()


@pytest.fixture
async def client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(create_app(settings)):
        yield c


@pytest.fixture
async def live_gateway(settings: GatewaySettings) -> AsyncIterator[LiveGateway]:
    async for live in served(create_app(settings)):
        yield live
