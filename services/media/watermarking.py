"""Watermarking a ready media's variants: the ``media-watermark`` job's work.

Each chosen variant is read *un-watermarked* (from the local store, or from S3 once a sync with
``deleteSource`` moved it there), the mark drawn on it
(:func:`services.media.domain.watermark.apply_watermark`, in a thread: Pillow releases the GIL),
and the result stored beside it as ``<name>.watermarked``; the record's variant list then holds
both. The plain variants are never touched, so applying another watermark replaces the earlier
one and the plain images stay available. Outcomes: a media that is gone, not ready, or whose
logo cannot be read fails permanently (retrying cannot help); store or database hiccups are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from typing import Any

from runtime.errors import AlreadyExists, InvalidArgument, NotFound, PermanentError, SwitchboardError, Unavailable
from runtime.logging import get_logger
from runtime.queue import QueueClient
from runtime.telemetry import get_tracer
from services.media.db import MediaDatabase
from services.media.domain.records import MediaRecord, MediaState, StoredVariant, variant_key
from services.media.domain.watermark import (
    WATERMARKED_SUFFIX,
    Position,
    WatermarkSpec,
    apply_watermark,
    watermarked_name,
)
from services.media.events import EventPublisher
from services.media.metrics import WATERMARK_JOBS
from services.media.store import TRACER, LocalStore, ObjectStore, read_object

__all__ = ["MediaWatermarker", "spec_from_job", "spec_to_job"]

log = get_logger("media.watermark")


def spec_to_job(spec: WatermarkSpec) -> dict[str, Any]:
    """The job's data (JSON) for ``spec``."""
    return {
        "position": spec.position.value,
        "opacity": spec.opacity,
        "scale": spec.scale,
        "text": spec.text,
        "overlay_media_id": spec.overlay_media_id,
        "variants": list(spec.variants),
    }


def spec_from_job(data: dict[str, Any]) -> WatermarkSpec:
    return WatermarkSpec(
        position=Position(data["position"]),
        opacity=float(data["opacity"]),
        scale=float(data["scale"]),
        text=str(data["text"]),
        overlay_media_id=str(data["overlay_media_id"]),
        variants=tuple(data["variants"]),
    )


def plain_variants(record: MediaRecord) -> tuple[StoredVariant, ...]:
    """The variants as processed (no watermark drawn on them)."""
    return tuple(v for v in record.variants if not v.name.endswith(WATERMARKED_SUFFIX))


def overlay_variant(record: MediaRecord) -> StoredVariant:
    """The largest plain variant of a ready logo media (InvalidArgument naming ``watermarkId``)."""
    plain = plain_variants(record)
    if record.state is not MediaState.READY or not plain:
        raise InvalidArgument("watermarkId", f"media {record.media_id} is {record.state.value}, not a ready image")
    return max(plain, key=lambda v: v.width * v.height)


class MediaWatermarker:
    def __init__(
        self,
        database: MediaDatabase,
        store: LocalStore,
        events: EventPublisher,
        *,
        sync: QueueClient | None = None,
        remote: ObjectStore | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.remote = remote
        """S3 when configured: variants moved there (sync with deleteSource) are read from it."""
        self.events = events
        self.sync = sync
        """The media-sync queue when S3 is configured: the watermarked outputs are copied there too."""

    async def watermark(self, media_id: str, spec: WatermarkSpec, *, job_id: str) -> dict[str, Any]:
        record = await self._ready(media_id, "media")
        plain = {v.name: v for v in plain_variants(record)}
        specs = {s.name: s for s in record.specs}
        started = time.perf_counter()
        try:
            overlay = await self._overlay_bytes(spec)
            marked = []
            for name in spec.chosen(list(plain)):
                variant = plain[name]
                attributes = {"media.id": media_id, "media.variant": name}
                with get_tracer(TRACER).start_as_current_span("media.watermark_variant", attributes=attributes):
                    data = await read_object(self.store, self.remote, variant.storage_key)
                    rendered = await asyncio.to_thread(apply_watermark, data, specs[name], spec, overlay)
                    key = variant_key(media_id, watermarked_name(name), rendered.content_type)
                    await self.store.put_bytes(key, rendered.data, rendered.content_type)
                etag = hashlib.md5(rendered.data, usedforsecurity=False).hexdigest()
                marked.append(
                    StoredVariant(
                        watermarked_name(name),
                        rendered.content_type,
                        rendered.width,
                        rendered.height,
                        len(rendered.data),
                        key,
                        etag,
                    )
                )
        except (Unavailable, NotFound):
            WATERMARK_JOBS.labels("retried").inc()
            raise
        except SwitchboardError as exc:
            WATERMARK_JOBS.labels("failed").inc()
            log.warning("watermark failed", media_id=media_id, job_id=job_id, error=exc.message)
            raise PermanentError(exc.message) from None
        updated = await self._replace_marked(media_id, marked)
        WATERMARK_JOBS.labels("completed").inc()
        elapsed = time.perf_counter() - started
        log.info("media watermarked", media_id=media_id, variants=len(marked), seconds=round(elapsed, 3))
        await self._queue_sync(updated, job_id)
        return {"mediaId": media_id, "variants": [v.name for v in marked]}

    async def _ready(self, media_id: str, what: str) -> MediaRecord:
        try:
            record = await self.database.get(media_id)
        except NotFound:
            raise PermanentError(f"{what} {media_id} does not exist") from None
        if record.state is not MediaState.READY:
            raise PermanentError(f"{what} {media_id} is {record.state.value}, not ready")
        return record

    async def _overlay_bytes(self, spec: WatermarkSpec) -> bytes | None:
        if not spec.overlay_media_id:
            return None
        try:
            logo = overlay_variant(await self.database.get(spec.overlay_media_id))
        except NotFound:
            raise PermanentError(f"watermark media {spec.overlay_media_id} does not exist") from None
        return await read_object(self.store, self.remote, logo.storage_key)

    async def _replace_marked(self, media_id: str, marked: list[StoredVariant]) -> MediaRecord:
        """The record's variants: every plain one, the earlier watermarked ones not redone, the new ones.
        The media counts as not synced to S3 until the sync job has copied the new outputs too."""
        current = await self.database.get(media_id)
        redone = {v.name for v in marked}
        kept = tuple(v for v in current.variants if v.name not in redone)
        updated = await self.database.update(media_id, variants=kept + tuple(marked), synced_to_s3=False)
        await self.events.publish(updated)
        return updated

    async def _queue_sync(self, record: MediaRecord, job_id: str) -> None:
        if self.sync is None:
            return
        with contextlib.suppress(AlreadyExists):  # a re-delivered job queued it already
            await self.sync.enqueue("sync_media", {"media_id": record.media_id}, job_id=f"sync:{job_id}")
