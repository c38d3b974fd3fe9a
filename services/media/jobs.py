"""The media job functions (arq convention: ``async def job(ctx, **data)``).

They find their collaborators in ``ctx`` (put there once by the worker's startup,
:mod:`services.media.worker`) and delegate: the work itself is :class:`MediaProcessor`'s,
:class:`MediaSync`'s and :class:`MediaWatermarker`'s.
"""

from __future__ import annotations

from typing import Any

from runtime.errors import PermanentError
from runtime.queue import JobContext
from services.media.cleanup import MediaCleanup
from services.media.domain.records import MediaState
from services.media.processing import MediaProcessor
from services.media.requeue import PendingRequeue
from services.media.sync import MediaSync
from services.media.watermarking import MediaWatermarker, spec_from_job

PROCESSOR = "media_processor"
SYNCER = "media_sync"
CLEANER = "media_cleanup"
WATERMARKER = "media_watermarker"
REQUEUER = "media_pending_requeue"


async def process_media(ctx: JobContext, media_id: str) -> dict[str, Any]:
    processor: MediaProcessor = ctx[PROCESSOR]
    last_attempt = int(ctx["job_try"]) >= int(ctx["max_tries"])
    return await processor.process(media_id, last_attempt=last_attempt)


async def requeue_pending_media(ctx: JobContext) -> dict[str, int]:
    """The scheduled pending sweep (``MEDIA_PENDING_SWEEP_CRON``): lost processing jobs enqueued again."""
    requeue: PendingRequeue = ctx[REQUEUER]
    return await requeue.sweep()


def _syncer(ctx: JobContext) -> MediaSync:
    syncer: MediaSync | None = ctx.get(SYNCER)
    if syncer is None:
        raise PermanentError("S3 is not configured on this worker (S3_BUCKET is empty)")
    return syncer


async def sync_media(ctx: JobContext, media_id: str, delete_source: bool = False) -> dict[str, Any]:
    """Local → S3."""
    return await _syncer(ctx).upload(media_id, delete_source=delete_source)


async def sync_media_from_s3(ctx: JobContext, media_id: str, delete_source: bool = False) -> dict[str, Any]:
    """S3 → local."""
    return await _syncer(ctx).download(media_id, delete_source=delete_source)


async def delete_media_from_s3(ctx: JobContext, media_id: str) -> dict[str, Any]:
    return await _syncer(ctx).delete_remote(media_id)


async def purge_media(ctx: JobContext) -> dict[str, int]:
    """The scheduled cleanup (``MEDIA_CLEANUP_CRON``): media past ``MEDIA_RETENTION_DAYS``, stale temp files."""
    cleanup: MediaCleanup = ctx[CLEANER]
    return await cleanup.daily()


async def purge_media_requested(ctx: JobContext, cutoff_ms: int, states: list[str]) -> dict[str, int]:
    """A cleanup asked for by hand that was too large to run within the call (``MediaCleanup.request``)."""
    cleanup: MediaCleanup = ctx[CLEANER]
    result = await cleanup.purge_before(cutoff_ms, [MediaState(s) for s in states])
    return {"deleted": result.deleted, "freedBytes": result.freed_bytes}


async def watermark_media(ctx: JobContext, media_id: str, watermark: dict[str, Any]) -> dict[str, Any]:
    watermarker: MediaWatermarker = ctx[WATERMARKER]
    return await watermarker.watermark(media_id, spec_from_job(watermark), job_id=str(ctx["job_id"]))
