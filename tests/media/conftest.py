"""Media fixtures: settings on a temp DATA_DIR, the service on a loopback port, a worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc.aio
import pytest
from redis.asyncio import Redis
from switchboard.media.v1 import media_pb2_grpc

from devsupport.ports import free_port
from runtime.grpc_server import GrpcServer
from runtime.queue import Worker
from services.media.app import MediaApp, create_app, open_parts, prepare_database, worker_context
from services.media.queues import processing_queue
from services.media.settings import MediaSettings
from tests.media.support import MediaClient, S3Server


@pytest.fixture
def media_settings(redis_url: str, tmp_path: Path) -> MediaSettings:
    return MediaSettings(
        redis_url=redis_url,
        data_dir=tmp_path,
        media_addr=f"127.0.0.1:{free_port()}",
        media_processing_backoff_base_s=0.05,
        media_processing_backoff_cap_s=0.2,
    )


@pytest.fixture
async def media_app(media_settings: MediaSettings) -> AsyncIterator[MediaApp]:
    await prepare_database(media_settings)
    app = await create_app(media_settings)
    yield app
    await app.close()


@pytest.fixture
async def media(media_app: MediaApp) -> AsyncIterator[MediaClient]:
    """The media gRPC service on a free loopback port, and a client of it."""
    service = dataclasses.replace(media_app.grpc_service(), shutdown_hooks=())  # media_app closes itself
    server = GrpcServer(service, grace_seconds=0.2, health_interval_seconds=0.2)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield MediaClient(media_pb2_grpc.MediaServiceStub(channel), channel)
    await channel.close()
    await server.stop()


@pytest.fixture
async def media_worker(media_settings: MediaSettings) -> AsyncIterator[Worker]:
    """The media-processing worker running in this test's event loop."""
    parts = open_parts(media_settings, client_name="media-worker-test")
    redis = Redis.from_url(media_settings.redis_url)
    worker = Worker(processing_queue(media_settings), redis, shared=worker_context(parts))
    task = asyncio.create_task(worker.run())
    yield worker
    worker.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=20)
    await redis.aclose()
    await parts.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.close()
