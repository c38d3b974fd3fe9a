"""Media test helpers: moto's S3 server on a free port, the in-process service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc.aio
from redis.asyncio import Redis
from switchboard.media.v1 import media_pb2, media_pb2_grpc

from devsupport.s3_server import S3Server
from devsupport.waiting import wait_until
from runtime.queue import QueueSpec, Worker
from services.media.app import close_worker_context, open_parts, worker_context
from services.media.domain.pipeline import Decoder
from services.media.jobs import PROCESSOR
from services.media.processing import MediaProcessor
from services.media.settings import MediaSettings
from services.media.store import s3_client

CHUNK = 64 * 1024


BUCKET = "switchboard-media"


def with_s3(settings: MediaSettings, server: S3Server) -> MediaSettings:
    """``settings`` syncing to a fresh, empty bucket on ``server``."""

    server.reset()
    with contextlib.closing(s3_client(server.url, "testing", "testing", "us-east-1")) as client:
        client.create_bucket(Bucket=BUCKET)
    return settings.model_copy(
        update={
            "s3_bucket": BUCKET,
            "s3_endpoint_url": server.url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
    )


def upload_messages(data: bytes, *, chunk: int = CHUNK, **metadata: Any) -> list[media_pb2.UploadRequest]:
    parts = [media_pb2.UploadRequest(metadata=media_pb2.UploadMetadata(**metadata))]
    parts += [media_pb2.UploadRequest(chunk=data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return parts


async def stream(messages: Sequence[media_pb2.UploadRequest]) -> AsyncIterator[media_pb2.UploadRequest]:
    for message in messages:
        yield message


@dataclass
class MediaClient:
    stub: media_pb2_grpc.MediaServiceAsyncStub
    channel: grpc.aio.Channel
    address: str = ""

    async def upload(self, data: bytes, **metadata: Any) -> media_pb2.UploadResponse:
        metadata.setdefault("filename", "photo.jpg")
        response: media_pb2.UploadResponse = await self.stub.Upload(
            stream(upload_messages(data, **metadata)), timeout=30
        )
        return response

    async def get(self, media_id: str) -> media_pb2.Media:
        media: media_pb2.Media = await self.stub.GetMedia(media_pb2.GetMediaRequest(media_id=media_id), timeout=10)
        return media

    async def wait_state(self, media_id: str, *states: int, within: float = 45) -> media_pb2.Media:
        async def reached() -> media_pb2.Media | None:
            media = await self.get(media_id)
            return media if media.state in states else None

        names = [media_pb2.MediaState.Name(s) for s in states]  # type: ignore[arg-type]
        media: media_pb2.Media = await wait_until(reached, within=within, what=f"media {media_id} in {names}")
        return media


@contextlib.asynccontextmanager
async def running_worker(
    settings: MediaSettings, spec: QueueSpec, *, decoder: Decoder | None = None
) -> AsyncIterator[Worker]:
    """A worker of one media queue running in this test's event loop; ``decoder``: what the
    processing worker opens originals with (the pipeline's own by default)."""
    parts = open_parts(settings, client_name=f"{spec.name}-test")
    redis = Redis.from_url(settings.redis_url)
    context = await worker_context(parts, spec.name)
    if decoder is not None:
        processor = context[PROCESSOR]
        assert isinstance(processor, MediaProcessor)
        processor.decoder = decoder
    worker = Worker(spec, redis, shared=context)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
        await close_worker_context(context)
        await redis.aclose()
        await parts.close()
