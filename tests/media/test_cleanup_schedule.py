"""The daily cleanup, run by the media-sync worker on MEDIA_CLEANUP_CRON: soft-deleted media past
MEDIA_RETENTION_DAYS leave the local store, S3 (moto's server) and the database; stale temp files go.

The worker's clock is moved by the test to the next tick; the test waits on the effect.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from redis.asyncio import Redis
from switchboard.media.v1 import media_pb2

from devsupport.waiting import wait_until
from runtime.errors import NotFound
from runtime.queue import JobInfo, QueueAdmin, Worker
from services.media.app import close_worker_context, open_parts, worker_context
from services.media.queues import CLEANUP_SCHEDULE, SYNC_QUEUE, sync_queue
from services.media.settings import MediaSettings
from services.media.store import LocalStore, S3Store
from tests.media.images import shared
from tests.media.support import MediaClient, S3Server, with_s3
from tests.support.clock import FakeClock

pytestmark = pytest.mark.timeout(120)
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC).timestamp()
NEXT_TICK = datetime(2030, 1, 2, 3, 0, tzinfo=UTC)  # the default MEDIA_CLEANUP_CRON: 0 3 * * *


@pytest.fixture
def media_settings(media_settings: MediaSettings, s3_server: S3Server) -> MediaSettings:
    return with_s3(media_settings, s3_server).model_copy(
        update={"media_retention_days": 0, "media_temp_max_age_s": 3600}
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def scheduled_sync_worker(media_settings: MediaSettings, clock: FakeClock) -> AsyncIterator[Worker]:
    """The media-sync worker as its process builds it, on the test's clock."""
    parts = open_parts(media_settings, client_name="media-sync-schedule-test")
    redis = Redis.from_url(media_settings.redis_url)
    context = await worker_context(parts, SYNC_QUEUE)
    worker = Worker(sync_queue(media_settings), redis, shared=context, clock=clock, schedule_poll_s=0.02)
    task = asyncio.create_task(worker.run())
    yield worker
    worker.stop()
    await asyncio.wait_for(task, 20)
    await close_worker_context(context)
    await redis.aclose()
    await parts.close()


async def synced(media: MediaClient, media_id: str) -> media_pb2.Media:
    ready = await media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)

    async def copied() -> media_pb2.Media | None:
        current = await media.get(media_id)
        return current if current.synced_to_s3 else None

    await wait_until(copied, within=45, what=f"media {media_id} synced to S3")
    return ready


async def test_the_daily_cleanup_purges_deleted_media_everywhere_and_stale_temp_files(
    media: MediaClient,
    media_worker: Worker,
    scheduled_sync_worker: Worker,
    media_settings: MediaSettings,
    clock: FakeClock,
    s3_bucket: S3Store,
) -> None:
    photo = shared("sk_rocket.jpg")
    gone = await synced(media, (await media.upload(photo, owner_id="a")).media.media_id)
    kept = await synced(media, (await media.upload(photo, owner_id="b")).media.media_id)
    await media.stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=gone.media_id), timeout=10)
    local = LocalStore(media_settings.data_dir / "media")
    stale, fresh = local.tmp / "upload-stale", local.tmp / "upload-fresh"
    stale.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y" * 10)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))

    clock.now = NEXT_TICK.timestamp() + 1
    admin = QueueAdmin(sync_queue(media_settings), scheduled_sync_worker.redis)
    job_id = f"schedule:{CLEANUP_SCHEDULE}:{round(NEXT_TICK.timestamp() * 1000)}"

    async def finished() -> JobInfo | None:
        try:
            job = await admin.job(job_id)
        except NotFound:  # not queued yet
            return None
        return job if job.state in ("completed", "failed") else None

    job: JobInfo = await wait_until(finished, within=45, what="the scheduled cleanup")
    objects = [f"originals/{gone.media_id}", *(v.storage_key for v in gone.variants)]
    one_copy = gone.size_bytes + sum(v.size_bytes for v in gone.variants)
    assert job.state == "completed"
    assert job.result == {"deleted": 1, "freedBytes": 2 * one_copy + 100, "tempFiles": 1}

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await media.get(gone.media_id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    for key in objects:
        assert await local.stat(key) is None
        assert await s3_bucket.stat(key) is None
    assert await s3_bucket.stat(f"originals/{kept.media_id}") is not None
    assert await local.stat(f"originals/{kept.media_id}") is not None
    assert (await media.get(kept.media_id)).state == media_pb2.MEDIA_STATE_READY
    assert not stale.exists()
    assert fresh.exists()
