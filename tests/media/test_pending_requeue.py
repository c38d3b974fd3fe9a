"""The pending sweep: a media still pending after MEDIA_PENDING_REQUEUE_AFTER_S whose processing
job is gone (spooled by a pod deleted before Redis answered again) gets its job again and becomes
ready; a media whose job is still queued is not enqueued twice; a recent pending media is left alone.

Uploads go through the service; a lost job is its job removed from Redis; an old upload is one
whose record the test dates back past the grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import update
from switchboard.media.v1 import media_pb2

from devsupport.waiting import wait_until
from runtime.errors import NotFound
from runtime.queue import JobInfo, JobState, QueueAdmin, QueueClient, Worker
from services.media.app import MediaParts, close_worker_context, open_parts, pending_requeue, worker_context
from services.media.db import MediaRow, now_ms
from services.media.queues import PENDING_SWEEP_SCHEDULE, PROCESS_JOB, PROCESSING_QUEUE, processing_queue
from services.media.requeue import PendingRequeue
from services.media.settings import MediaSettings
from tests.media.images import shared
from tests.media.support import MediaClient, running_worker
from tests.support.clock import FakeClock

pytestmark = pytest.mark.timeout(120)
PHOTO = shared("sk_rocket.jpg")
START = datetime(2030, 1, 1, 12, 1, tzinfo=UTC).timestamp()
NEXT_TICK = datetime(2030, 1, 1, 12, 5, tzinfo=UTC)  # the default MEDIA_PENDING_SWEEP_CRON: */5 * * * *


@pytest.fixture
def media_settings(media_settings: MediaSettings) -> MediaSettings:
    return media_settings.model_copy(
        update={"media_pending_sweep_cron": MediaSettings.model_fields["media_pending_sweep_cron"].default}
    )


@pytest.fixture
async def parts(media_settings: MediaSettings) -> AsyncIterator[MediaParts]:
    opened = open_parts(media_settings, client_name="media-requeue-test")
    yield opened
    await opened.close()


@pytest.fixture
def admin(parts: MediaParts) -> QueueAdmin:
    return QueueAdmin(processing_queue(parts.settings), parts.redis)


@pytest.fixture
async def sweep(parts: MediaParts) -> AsyncIterator[PendingRequeue]:
    built = pending_requeue(parts)
    yield built
    await built.processing.close()


async def upload(media: MediaClient, owner: str) -> str:
    answer = await media.upload(PHOTO, owner_id=owner)
    assert answer.media.state == media_pb2.MEDIA_STATE_PENDING
    return str(answer.media.media_id)


async def lose_job(admin: QueueAdmin, media_id: str) -> None:
    await admin.remove(f"media:{media_id}")


async def date_back(parts: MediaParts, media_id: str) -> None:
    """Make the record look uploaded just past the grace period (MEDIA_PENDING_REQUEUE_AFTER_S)."""
    then = now_ms() - (parts.settings.media_pending_requeue_after_s + 60) * 1000
    async with parts.engine.begin() as connection:
        changed = await connection.execute(
            update(MediaRow).where(MediaRow.media_id == media_id).values(created_at_ms=then, updated_at_ms=then)
        )
    assert changed.rowcount == 1


async def finished(admin: QueueAdmin, job_id: str) -> JobInfo:
    async def done() -> JobInfo | None:
        try:
            job = await admin.job(job_id)
        except NotFound:  # not queued yet
            return None
        return job if job.state in (JobState.COMPLETED, JobState.FAILED) else None

    job: JobInfo = await wait_until(done, within=45, what=f"job {job_id} finished")
    return job


async def test_the_scheduled_sweep_gives_a_lost_job_back_and_its_media_becomes_ready(
    media: MediaClient, media_settings: MediaSettings, parts: MediaParts, admin: QueueAdmin
) -> None:
    old, recent = await upload(media, "old"), await upload(media, "recent")
    for media_id in (old, recent):
        await lose_job(admin, media_id)
    await date_back(parts, old)

    clock = FakeClock(START)
    redis = Redis.from_url(media_settings.redis_url)
    context = await worker_context(parts, PROCESSING_QUEUE)
    worker = Worker(processing_queue(media_settings), redis, shared=context, clock=clock, schedule_poll_s=0.02)
    task = asyncio.create_task(worker.run())
    try:
        clock.now = NEXT_TICK.timestamp() + 1
        tick_job = f"schedule:{PENDING_SWEEP_SCHEDULE}:{round(NEXT_TICK.timestamp() * 1000)}"
        job = await finished(admin, tick_job)
        assert (job.state, job.result) == (JobState.COMPLETED, {"requeued": 1, "stillQueued": 0})
        await media.wait_state(old, media_pb2.MEDIA_STATE_READY)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)
        await close_worker_context(context)
        await redis.aclose()
    assert (await media.get(recent)).state == media_pb2.MEDIA_STATE_PENDING
    with pytest.raises(NotFound):
        await admin.job(f"media:{recent}")


async def test_a_job_still_queued_is_not_enqueued_again(
    media: MediaClient, media_settings: MediaSettings, parts: MediaParts, admin: QueueAdmin, sweep: PendingRequeue
) -> None:
    queued, lost = await upload(media, "queued"), await upload(media, "lost")
    await lose_job(admin, lost)
    for media_id in (queued, lost):
        await date_back(parts, media_id)
    before = await admin.job(f"media:{queued}")
    counted = REGISTRY.get_sample_value("media_pending_requeued_total") or 0.0

    assert await sweep.sweep() == {"requeued": 1, "stillQueued": 1}
    assert REGISTRY.get_sample_value("media_pending_requeued_total") == counted + 1
    assert await sweep.sweep() == {"requeued": 0, "stillQueued": 2}
    assert (await admin.counts()).waiting == 2
    assert await admin.job(f"media:{queued}") == before
    assert (await admin.job(f"media:{lost}")).data == {"media_id": lost}

    async with running_worker(media_settings, processing_queue(media_settings)):
        for media_id in (queued, lost):
            await media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)
            job = await finished(admin, f"media:{media_id}")
            assert (job.state, job.attempts) == (JobState.COMPLETED, 1)


async def test_a_finished_job_of_a_media_still_pending_is_run_again(
    media: MediaClient, media_settings: MediaSettings, parts: MediaParts, admin: QueueAdmin, sweep: PendingRequeue
) -> None:
    """A job can end without moving its media on (every attempt failed before it could mark it):
    the id is taken, so the sweep runs that job again instead of enqueueing another."""
    media_id = await upload(media, "stuck")
    async with running_worker(media_settings, processing_queue(media_settings)):
        await media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)
    async with parts.engine.begin() as connection:
        await connection.execute(update(MediaRow).where(MediaRow.media_id == media_id).values(state="pending"))
    await date_back(parts, media_id)

    assert await sweep.sweep() == {"requeued": 1, "stillQueued": 0}
    assert (await admin.job(f"media:{media_id}")).state == JobState.WAITING
    async with running_worker(media_settings, processing_queue(media_settings)):
        await media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)
        job = await finished(admin, f"media:{media_id}")
    assert job.result["state"] == "ready"


async def test_a_job_for_a_media_already_ready_changes_nothing(
    media: MediaClient, media_worker: Worker, media_settings: MediaSettings, admin: QueueAdmin
) -> None:
    media_id = await upload(media, "ready")
    ready = await media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)
    client = QueueClient(processing_queue(media_settings), media_worker.redis)
    again = await client.enqueue(PROCESS_JOB, {"media_id": media_id}, job_id=f"media:{media_id}:again")

    job = await finished(admin, again)
    assert (job.state, job.result) == (JobState.COMPLETED, {"mediaId": media_id, "skipped": "ready"})
    assert await media.get(media_id) == ready


@pytest.mark.parametrize("name", ["media_pending_sweep_cron", "media_cleanup_cron"])
def test_a_schedule_setting_that_is_no_cron_expression_is_refused_at_start(name: str) -> None:
    with pytest.raises(ValidationError, match=f"(?s){name}.*is not a cron expression"):
        MediaSettings.model_validate({name: "every 5 minutes"})
