"""The media service's job queues, declared once for the service (producer) and the worker.

``media-processing``: one job per upload, ``process_media(media_id=...)``; concurrency 5 per
worker process, 3 attempts with exponential back-off from 1 s; a corrupt or refused image is a
PermanentError and never retried. ``media-sync`` copies ready media to S3; ``media-watermark``
draws watermarks on ready media's variants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from arq.worker import func

from runtime.queue import QueueSpec, Schedule
from runtime.retry import RetryPolicy
from services.media.jobs import (
    delete_media_from_s3,
    process_media,
    purge_media,
    purge_media_requested,
    requeue_pending_media,
    sync_media,
    sync_media_from_s3,
    watermark_media,
)
from services.media.settings import MediaSettings

PROCESSING_QUEUE = "media-processing"
PROCESS_JOB = process_media.__name__
SYNC_QUEUE = "media-sync"
SYNC_JOB = sync_media.__name__
WATERMARK_QUEUE = "media-watermark"
WATERMARK_JOB = watermark_media.__name__
CLEANUP_SCHEDULE = "media-cleanup"
PENDING_SWEEP_SCHEDULE = "media-pending-sweep"
PURGE_REQUESTED_JOB = purge_media_requested.__name__
PURGE_REQUESTED_TIMEOUT_S = 3600.0
"""A requested purge may be large: an attempt runs this long (the next one resumes it)."""
SYNC_JOBS = {
    "upload": sync_media.__name__,
    "download": sync_media_from_s3.__name__,
    "delete": delete_media_from_s3.__name__,
}
"""The job of each sync operation (:class:`services.media.sync.SyncOperation`)."""


def processing_queue(settings: MediaSettings) -> QueueSpec:
    """``media-processing``; also the pending sweep (:mod:`services.media.requeue`) on ``MEDIA_PENDING_SWEEP_CRON``."""
    return QueueSpec(
        name=PROCESSING_QUEUE,
        functions=(process_media, requeue_pending_media),
        schedules=(
            Schedule(PENDING_SWEEP_SCHEDULE, settings.media_pending_sweep_cron, requeue_pending_media.__name__),
        ),
        concurrency=settings.media_processing_concurrency,
        attempts=settings.media_processing_attempts,
        backoff=RetryPolicy(
            attempts=settings.media_processing_attempts,
            base=settings.media_processing_backoff_base_s,
            cap=settings.media_processing_backoff_cap_s,
            jitter=0.2,
        ),
        job_timeout_s=settings.media_processing_timeout_s,
    )


def sync_queue(settings: MediaSettings) -> QueueSpec:
    """``media-sync``: copies between the local store and S3, one job per media and operation
    (every ready media is uploaded automatically when S3_BUCKET is set); concurrency 5, 3 attempts.
    Also the storage's upkeep: the cleanup, on ``MEDIA_CLEANUP_CRON``, and the large cleanups asked for by hand."""
    return QueueSpec(
        name=SYNC_QUEUE,
        functions=(
            sync_media,
            sync_media_from_s3,
            delete_media_from_s3,
            purge_media,
            # arq's func() types its coroutine's ctx as a plain dict; ours is JobContext (a dict).
            func(cast("Any", purge_media_requested), name=PURGE_REQUESTED_JOB, timeout=PURGE_REQUESTED_TIMEOUT_S),
        ),
        schedules=(Schedule(CLEANUP_SCHEDULE, settings.media_cleanup_cron, purge_media.__name__),),
        concurrency=settings.media_sync_concurrency,
        attempts=settings.media_sync_attempts,
        backoff=RetryPolicy(attempts=settings.media_sync_attempts, base=1.0, cap=60.0, jitter=0.2),
        job_timeout_s=300.0,
    )


def watermark_queue(settings: MediaSettings) -> QueueSpec:
    """``media-watermark``: one job per watermark request; concurrency 3, 3 attempts from 1 s."""
    return QueueSpec(
        name=WATERMARK_QUEUE,
        functions=(watermark_media,),
        concurrency=settings.media_watermark_concurrency,
        attempts=settings.media_watermark_attempts,
        backoff=RetryPolicy(attempts=settings.media_watermark_attempts, base=1.0, cap=60.0, jitter=0.2),
        job_timeout_s=settings.media_processing_timeout_s,
    )


SPECS: dict[str, Callable[[MediaSettings], QueueSpec]] = {
    PROCESSING_QUEUE: processing_queue,
    SYNC_QUEUE: sync_queue,
    WATERMARK_QUEUE: watermark_queue,
}
"""Every media queue's spec, by queue name."""
