"""Fuzz the gRPC requests of the real media, notify and ami_ingest services from their descriptors
(hypothesis), as test_grpc_fuzz does for status and queue admin: every method answers each
generated request with a status, never a crash (INTERNAL, UNKNOWN, DATA_LOSS). Each service runs
in-process on real Redis and SQLite; notify without workers (a Send is queued, not delivered),
ami_ingest leading with no Asterisk to reach. The number of requests is printed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fuzz.harness import edge_services, fuzz

SERVICES = {
    "media": "switchboard.media.v1.MediaService",
    "notify": "switchboard.notify.v1.NotifyService",
    "ami_ingest": "switchboard.ingest.v1.IngestControl",
}


@pytest.mark.timeout(600)
async def test_generated_requests_never_crash_media_notify_or_ami_ingest(redis_url: str, tmp_path: Path) -> None:
    async with edge_services(redis_url, tmp_path) as addresses:
        ran, crashes = await asyncio.to_thread(fuzz, addresses, SERVICES)
    print(f"hypothesis/gRPC (media, notify, ami_ingest): {ran} generated requests, {len(crashes)} crashes")
    assert ran > 0
    assert crashes == []
