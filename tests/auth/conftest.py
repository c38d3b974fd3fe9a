"""Auth fixtures: API keys in the test's own SQLite database, and the gateway's fake backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.settings import BACKEND_NAMES
from tests.auth.harness import Keys, make_keys
from tests.gateway.fake_status import FakeStatusService, start_backend
from tests.gateway.harness import Backends, sample_center


@pytest.fixture
async def keys(tmp_path: Path) -> AsyncIterator[Keys]:
    made = await make_keys(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    try:
        yield made
    finally:
        await made.store.close()


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    """One loopback gRPC server per backend, a fake StatusService with a sample center on status."""
    fake = FakeStatusService()
    sample_center(fake)
    servers = {name: await start_backend(fake if name == "status" else None) for name in BACKEND_NAMES}
    try:
        yield Backends(servers)
    finally:
        for server in servers.values():
            await server.stop()
