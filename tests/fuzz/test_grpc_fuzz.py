"""Fuzz the gRPC requests of the real status and queue admin services from their descriptors
(hypothesis): every method answers each generated request with a status, never a crash
(INTERNAL, UNKNOWN, DATA_LOSS). The number of requests is printed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fuzz.harness import fuzz, real_backends

SERVICES = {"status": "switchboard.status.v1.StatusService", "queue_admin": "switchboard.queue.v1.QueueAdmin"}


@pytest.mark.timeout(600)
async def test_generated_requests_never_crash_a_service(redis_url: str, tmp_path: Path) -> None:
    async with real_backends(redis_url, tmp_path) as backends:
        ran, crashes = await asyncio.to_thread(fuzz, backends.addresses, SERVICES)
    print(f"hypothesis/gRPC: {ran} generated requests, {len(crashes)} crashes")
    assert ran > 0
    assert crashes == []
