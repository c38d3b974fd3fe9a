"""Media fixtures: settings on a temp DATA_DIR, the service on a loopback port, a worker in-process."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from switchboard.media.v1 import media_pb2_grpc

from devsupport.auth import AUTH_HEADERS, aio_channel, authenticator_for_tests
from devsupport.ports import bound_socket, on_any_port
from devsupport.waiting import wait_until
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from runtime.grpc_server import GrpcServer
from runtime.queue import Worker
from services.media.app import (
    MediaApp,
    create_app,
    prepare_database,
    s3_store,
)
from services.media.queues import processing_queue, sync_queue, watermark_queue
from services.media.settings import MediaSettings
from services.media.store import S3Store
from services.queue_admin.app import QueueAdminApp
from services.queue_admin.settings import QueueAdminSettings
from tests.media.support import MediaClient, S3Server, running_worker

YEARLY = "0 0 1 1 *"


@pytest.fixture
def s3_bucket(media_settings: MediaSettings) -> Iterator[S3Store]:
    """The S3 store these media settings sync to (its connections closed after the test)."""
    bucket = s3_store(media_settings)
    assert bucket is not None, "these media settings name no S3 bucket"
    yield bucket
    bucket.close()


@pytest.fixture
def media_settings(redis_url: str, tmp_path: Path) -> MediaSettings:
    # No MEDIA_ADDR: the service binds a free port as it starts (the ``media`` fixture).
    return MediaSettings(
        redis_url=redis_url,
        data_dir=tmp_path,
        media_processing_backoff_base_s=0.05,
        media_processing_backoff_cap_s=0.2,
        # The pending sweep is a job of media-processing: a tick on the wall clock during a test
        # would add it to the queue counts tests read. It runs where a test moves a worker's clock.
        media_pending_sweep_cron=YEARLY,
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
    service = dataclasses.replace(on_any_port(media_app.grpc_service()), shutdown_hooks=())  # media_app closes itself
    server = GrpcServer(
        service, authenticator=authenticator_for_tests(), grace_seconds=0.2, health_interval_seconds=0.2
    )
    port = await server.start()
    channel = aio_channel(f"127.0.0.1:{port}")
    yield MediaClient(media_pb2_grpc.MediaServiceStub(channel), channel, f"127.0.0.1:{port}")
    await channel.close()
    await server.stop()


@pytest.fixture
async def media_worker(media_settings: MediaSettings) -> AsyncIterator[Worker]:
    """The media-processing worker running in this test's event loop."""
    async with running_worker(media_settings, processing_queue(media_settings)) as worker:
        yield worker


@pytest.fixture
async def watermark_worker(media_settings: MediaSettings) -> AsyncIterator[Worker]:
    """The media-watermark worker running in this test's event loop."""
    async with running_worker(media_settings, watermark_queue(media_settings)) as worker:
        yield worker


@pytest.fixture
async def sync_worker(media_settings: MediaSettings) -> AsyncIterator[Worker]:
    """The media-sync worker running in this test's event loop (``media_settings`` must name a
    bucket: see ``support.with_s3``)."""
    async with running_worker(media_settings, sync_queue(media_settings)) as worker:
        yield worker


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def queue_admin_address(redis_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """The queue admin service (what /api/admin/media/queue asks) on a free loopback port."""
    settings = QueueAdminSettings(redis_url=redis_url, data_dir=tmp_path / "queue-admin")
    app = await QueueAdminApp.create(settings)
    server = GrpcServer(
        on_any_port(app.grpc_service()),
        authenticator=authenticator_for_tests(),
        grace_seconds=0.2,
        health_interval_seconds=0.2,
    )
    port = await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop()


@pytest.fixture
async def gateway(media: MediaClient, queue_admin_address: str) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app in-process, its media and queue admin backends real."""
    settings = GatewaySettings(
        media_addr=media.address,
        queue_admin_addr=queue_admin_address,
        rpc_timeout_seconds=10.0,
        sse_ping_seconds=1.0,
        gateway_status_mirror=False,
        media_max_upload_bytes=2_000_000,
    )
    app = create_gateway(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test", headers=AUTH_HEADERS
        ) as client,
    ):
        yield client


@pytest.fixture
async def live_media_gateway(media: MediaClient, queue_admin_address: str) -> AsyncIterator[str]:
    """The gateway served by uvicorn on a free port (streaming responses need a real server)."""
    settings = GatewaySettings(
        media_addr=media.address,
        queue_admin_addr=queue_admin_address,
        rpc_timeout_seconds=10.0,
        sse_ping_seconds=1.0,
        gateway_status_mirror=False,
    )
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_gateway(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    try:
        task = asyncio.create_task(server.serve(sockets=[sock]))

        def started() -> bool:
            if task.done():
                task.result()  # it failed to start: its error, not a timeout
            return server.started

        await wait_until(started, within=20, what="the gateway serves")
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        await asyncio.wait_for(task, timeout=20)
    finally:
        sock.close()  # uvicorn closes it as it stops; not if it failed to start
