"""Fixtures starting the probe process (tests/runtime/probe_server.py) against the test Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from tests.runtime.harness import Probe, StartProbe, probe_starter


@pytest.fixture
def start_probe(redis_server: RedisServer) -> Iterator[StartProbe]:
    """``start_probe(**env)`` runs the probe against the test Redis and waits for SERVING."""
    started: list[ServiceProcess] = []
    yield probe_starter(redis_server, started)
    for process in started:
        process.close()
    redis_server.start()


@pytest.fixture(scope="module")
def shared_probe(redis_server: RedisServer) -> Iterator[Probe]:
    """One probe process for tests that only make calls (saves a process start per test)."""
    redis_server.start()
    started: list[ServiceProcess] = []
    yield probe_starter(redis_server, started)()
    for process in started:
        process.close()
