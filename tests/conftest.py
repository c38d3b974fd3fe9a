"""Fixtures every test area shares: real Redis and PostgreSQL on free loopback ports.

Contract (other tests/<area>/conftest.py files build on these names):

- ``redis_server`` (session): a :class:`RedisServer` — ``.url``, ``.port``, ``.stop()``,
  ``.start()`` (same port, for outage tests).
- ``redis_url`` (function): that server's URL, running and flushed before the test.
- ``postgres_server`` (session): a :class:`PostgresServer` (started only if some test asks).
- ``postgres_url`` (session): ``postgresql+asyncpg://postgres@127.0.0.1:PORT/switchboard_test``.
- ``spawn`` (function): ``spawn(module, *args, env={...})`` starts ``python -m module`` as a
  :class:`ServiceProcess`; everything spawned is killed after the test.

A missing redis-server or PostgreSQL fails the test with how to install it; nothing is skipped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping

import pytest
from hypothesis import settings as hypothesis_settings
from playwright.async_api import Browser
from redis.asyncio import Redis

from devsupport.auth import AUTH_ENV
from devsupport.postgres_server import PostgresServer
from devsupport.procs import ServiceProcess, SpawnService
from devsupport.redis_server import RedisServer
from runtime.auth.migrate import run_migrations as run_auth_migrations
from runtime.config import CommonSettings
from tests.support.browser import headless_chromium

# CI runs the same examples every time (a red run is reproducible, never a coin toss); local runs
# keep exploring new ones. No per-example deadline: two shared cores make timings meaningless.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None, print_blob=True)
# make mutation runs every property test once per mutant: the same few examples each time.
hypothesis_settings.register_profile("mutation", derandomize=True, deadline=None, max_examples=15, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The environment every settings object and process a test makes starts from (unless it
    names its own): DATA_DIR in a temporary directory (the SQLite database with the auth tables,
    spools — never the repo's own .data), the test host names and the test credential as
    AUTH_BOOTSTRAP_TOKEN, so services calling each other in a test present it like they do under
    ``make run``."""
    path = str(tmp_path_factory.mktemp("data"))
    # The in-process gateway tests talk to http://gateway.test (httpx's ASGI transport).
    values = {"DATA_DIR": path, "GATEWAY_ALLOWED_HOSTS": "127.0.0.1,localhost,gateway.test", **AUTH_ENV}
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    # The auth tables once, up front: every gateway a test starts finds them at head.
    run_auth_migrations(CommonSettings().auth_store_url)
    try:
        yield path
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    # An outage test may have left it stopped: every test starts from a running, empty server.
    redis_server.start()
    redis_server.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("switchboard_test")


@pytest.fixture
def spawn() -> Iterator[SpawnService]:
    started: list[ServiceProcess] = []

    def _spawn(module: str, *args: str, env: Mapping[str, str] | None = None) -> ServiceProcess:
        process = ServiceProcess.module(module, *args, env=env)
        started.append(process)
        return process.start()

    yield _spawn
    for process in started:
        process.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """An asyncio client of the test's Redis."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for one test. Ask for it last, after the servers its pages talk to, so
    that it closes first (tests/test_layout.py checks this)."""
    async with headless_chromium() as launched:
        yield launched
