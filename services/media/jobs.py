"""The media job functions (arq convention: ``async def job(ctx, **data)``).

They find their collaborators in ``ctx`` (put there once by the worker's startup,
:mod:`services.media.worker`) and delegate: the work itself is :class:`MediaProcessor`'s.
"""

from __future__ import annotations

from typing import Any

from runtime.queue import JobContext
from services.media.processing import MediaProcessor
from services.media.sync import MediaSync
from services.media.watermarking import MediaWatermarker, spec_from_job

PROCESSOR = "media_processor"
SYNCER = "media_sync"
WATERMARKER = "media_watermarker"


async def process_media(ctx: JobContext, media_id: str) -> dict[str, Any]:
    processor: MediaProcessor = ctx[PROCESSOR]
    last_attempt = int(ctx["job_try"]) >= int(ctx["max_tries"])
    return await processor.process(media_id, last_attempt=last_attempt)


async def sync_media(ctx: JobContext, media_id: str) -> dict[str, Any]:
    syncer: MediaSync = ctx[SYNCER]
    return await syncer.upload(media_id)


async def watermark_media(ctx: JobContext, media_id: str, watermark: dict[str, Any]) -> dict[str, Any]:
    watermarker: MediaWatermarker = ctx[WATERMARKER]
    return await watermarker.watermark(media_id, spec_from_job(watermark), job_id=str(ctx["job_id"]))
