"""S3 sync through moto's S3 server: a ready media is copied automatically, and again idempotently."""

from __future__ import annotations

import hashlib

import pytest
from switchboard.media.v1 import media_pb2

from devsupport.waiting import wait_until
from runtime.queue import QueueAdmin, QueueClient, Worker
from services.media.queues import SYNC_JOB, sync_queue
from services.media.settings import MediaSettings
from services.media.store import S3Store
from tests.media.images import shared
from tests.media.support import MediaClient, S3Server, with_s3


@pytest.fixture
def media_settings(media_settings: MediaSettings, s3_server: S3Server) -> MediaSettings:
    return with_s3(media_settings, s3_server)


async def test_a_ready_media_is_synced_to_s3_with_identical_bytes(
    media: MediaClient, media_worker: Worker, sync_worker: Worker, media_settings: MediaSettings, s3_bucket: S3Store
) -> None:
    photo = shared("sk_rocket.jpg")
    media_id = (await media.upload(photo, owner_id="s3")).media.media_id
    ready = await media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)

    async def synced() -> media_pb2.Media | None:
        current = await media.get(media_id)
        return current if current.synced_to_s3 else None

    await wait_until(synced, within=45, what=f"media {media_id} synced to S3")
    assert await s3_bucket.get_bytes(f"originals/{media_id}") == photo
    for variant in ready.variants:
        info = await s3_bucket.stat(variant.storage_key)
        assert info is not None
        assert info.size == variant.size_bytes

    # A second sync of the same media compares checksums and rewrites nothing.
    client = QueueClient(sync_queue(media_settings), sync_worker.redis)
    job_id = await client.enqueue(SYNC_JOB, {"media_id": media_id}, job_id=f"again:{media_id}")
    await client.close()

    async def result() -> object:
        job = await QueueAdmin(sync_queue(media_settings), sync_worker.redis).job(job_id)
        return job.result if job.state == "completed" else None

    outcome = await wait_until(result, within=30, what="the second sync finished")
    assert outcome == {"mediaId": media_id, "operation": "upload", "copied": 0, "unchanged": 4, "sourceDeleted": 0}
    assert hashlib.sha256(await s3_bucket.get_bytes(f"originals/{media_id}")).hexdigest() == ready.sha256
