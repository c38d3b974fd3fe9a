"""Fuzz the gRPC requests of the real media, notify and ami_ingest services from their descriptors
(hypothesis), as test_grpc_fuzz does for status and queue admin: every method answers each
generated request with a status, never a crash (INTERNAL, UNKNOWN, DATA_LOSS). Each service runs
in-process on real Redis and SQLite; notify without workers (a Send is queued, not delivered),
ami_ingest leading with no Asterisk to reach. The number of requests is printed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from devsupport.auth import authenticator_for_tests
from devsupport.ports import free_port
from runtime.grpc_server import GrpcServer, GrpcService
from services.ami_ingest.__main__ import grpc_service as ingest_grpc_service
from services.ami_ingest.app import IngestApp
from services.ami_ingest.settings import AmiIngestSettings
from services.media.app import create_app as create_media_app
from services.media.app import prepare_database
from services.media.settings import MediaSettings
from services.notify.app import NotifyApp
from services.notify.settings import NotifySettings
from tests.fuzz.harness import fuzz

SERVICES = {
    "media": "switchboard.media.v1.MediaService",
    "notify": "switchboard.notify.v1.NotifyService",
    "ami_ingest": "switchboard.ingest.v1.IngestControl",
}


@contextlib.asynccontextmanager
async def serving(service: GrpcService) -> AsyncIterator[str]:
    server = GrpcServer(
        service, authenticator=authenticator_for_tests(), grace_seconds=0.2, health_interval_seconds=0.2
    )
    port = await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def edge_services(redis_url: str, data_dir: Path) -> AsyncIterator[dict[str, str]]:
    media_settings = MediaSettings(redis_url=redis_url, data_dir=data_dir, media_addr=f"127.0.0.1:{free_port()}")
    await prepare_database(media_settings)
    media = await create_media_app(media_settings)
    notify = await NotifyApp.create(
        NotifySettings(
            redis_url=redis_url,
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'notify.db'}",
            notify_addr=f"127.0.0.1:{free_port()}",
        )
    )
    ingest_settings = AmiIngestSettings(
        redis_url=redis_url,
        ami_ingest_addr=f"127.0.0.1:{free_port()}",
        status_addr=f"127.0.0.1:{free_port()}",  # nothing there: batches wait, as in an outage
        ami_port=free_port(),  # no Asterisk either
        ami_username="fuzz",
        ami_secret=SecretStr("fuzz-secret"),
    )
    ingest = IngestApp(ingest_settings)
    await ingest.start()
    try:
        async with (
            serving(dataclasses.replace(media.grpc_service(), shutdown_hooks=())) as media_address,
            serving(notify.grpc_service()) as notify_address,
            serving(ingest_grpc_service(ingest, ingest_settings)) as ingest_address,
        ):
            yield {"media": media_address, "notify": notify_address, "ami_ingest": ingest_address}
    finally:
        await media.close()


@pytest.mark.timeout(600)
async def test_generated_requests_never_crash_media_notify_or_ami_ingest(redis_url: str, tmp_path: Path) -> None:
    async with edge_services(redis_url, tmp_path) as addresses:
        ran, crashes = await asyncio.to_thread(fuzz, addresses, SERVICES)
    print(f"hypothesis/gRPC (media, notify, ami_ingest): {ran} generated requests, {len(crashes)} crashes")
    assert ran > 0
    assert crashes == []
