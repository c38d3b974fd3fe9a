"""Processing one upload: original from the store → the pipeline → variants in the store → ``ready``.

The pipeline is CPU work that releases the GIL (Pillow's decoders, resampling and encoders),
so it runs in a thread: a worker's concurrent jobs use every core and the event loop stays free
to renew leases. Outcomes:

- the image is refused or corrupt (any deliberate, non-transient error): ``failed`` with a
  readable ``error``, and PermanentError so the queue never retries it;
- anything else (store or database hiccup) is retried by the queue; on the last attempt the
  media is marked ``failed`` first;
- a job delivered again for a media already ``ready`` or ``deleted`` does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from typing import Any

from runtime.errors import AlreadyExists, NotFound, PermanentError, SwitchboardError, Unavailable
from runtime.logging import get_logger
from runtime.queue import QueueClient
from runtime.telemetry import get_tracer
from services.media.db import MediaDatabase
from services.media.domain.pipeline import Decoder, ProcessedImage, open_original, process_image
from services.media.domain.records import MediaRecord, MediaState, StoredVariant, variant_key
from services.media.events import EventPublisher
from services.media.metrics import PROCESSING_JOBS, PROCESSING_SECONDS
from services.media.store import TRACER, LocalStore, ObjectStore, read_object

log = get_logger("media.processing")


class MediaProcessor:
    def __init__(
        self,
        database: MediaDatabase,
        store: LocalStore,
        events: EventPublisher,
        *,
        max_pixels: int,
        sync: QueueClient | None = None,
        remote: ObjectStore | None = None,
        decoder: Decoder = open_original,
    ) -> None:
        self.database = database
        self.decoder = decoder
        """What opens an original's bytes: each job calls it once, for all the media's variants."""
        self.store = store
        self.remote = remote
        """S3 when configured: an original moved there (sync with deleteSource) is read from it."""
        self.events = events
        self.max_pixels = max_pixels
        self.sync = sync
        """The media-sync queue when S3 is configured: every ready media is copied there."""

    async def process(self, media_id: str, *, last_attempt: bool) -> dict[str, Any]:
        try:
            record = await self.database.get(media_id)
        except NotFound:
            raise PermanentError(f"media {media_id} does not exist") from None
        if record.state in (MediaState.READY, MediaState.DELETED, MediaState.FAILED):
            return {"mediaId": media_id, "skipped": record.state.value}
        record = await self._move(record, MediaState.PROCESSING)
        started = time.perf_counter()
        try:
            tracer = get_tracer(TRACER)
            with tracer.start_as_current_span("media.render", attributes={"media.id": media_id}) as span:
                data = await read_object(self.store, self.remote, record.original_key)
                result = await asyncio.to_thread(
                    process_image,
                    data,
                    record.specs,
                    max_pixels=self.max_pixels,
                    keep_metadata=record.keep_metadata,
                    decoder=self.decoder,
                )
                span.set_attributes(
                    {"media.bytes": len(data), "media.width": result.width, "media.height": result.height}
                )
                del data
            with tracer.start_as_current_span("media.store_variants", attributes={"media.id": media_id}):
                variants = await self._store_variants(record, result)
        except SwitchboardError as exc:
            if isinstance(exc, Unavailable) and not last_attempt:
                PROCESSING_JOBS.labels("retried").inc()
                raise
            await self._fail(record, exc.message)
            raise PermanentError(exc.message) from None
        except Exception as exc:
            if not last_attempt:
                PROCESSING_JOBS.labels("retried").inc()
                raise
            await self._fail(record, f"{type(exc).__name__}: {exc}")
            raise
        elapsed = time.perf_counter() - started
        ready = await self._move(
            record, MediaState.READY, width=result.width, height=result.height, variants=variants, error=""
        )
        PROCESSING_SECONDS.observe(elapsed)
        PROCESSING_JOBS.labels("ready").inc()
        log.info("media ready", media_id=media_id, variants=len(variants), seconds=round(elapsed, 3))
        if self.sync is not None:
            job_id = f"sync:{media_id}:{ready.updated_at_ms}"
            with contextlib.suppress(AlreadyExists):  # a re-delivered job queued it already
                await self.sync.enqueue("sync_media", {"media_id": media_id}, job_id=job_id)
        return {"mediaId": media_id, "state": ready.state.value, "variants": [v.name for v in variants]}

    async def _store_variants(self, record: MediaRecord, result: ProcessedImage) -> tuple[StoredVariant, ...]:
        stored = []
        for v in result.variants:
            key = variant_key(record.media_id, v.name, v.content_type)
            await self.store.put_bytes(key, v.data, v.content_type)
            etag = hashlib.md5(v.data, usedforsecurity=False).hexdigest()
            stored.append(StoredVariant(v.name, v.content_type, v.width, v.height, len(v.data), key, etag))
        return tuple(stored)

    async def _fail(self, record: MediaRecord, error: str) -> None:
        PROCESSING_JOBS.labels("failed").inc()
        log.warning("media failed", media_id=record.media_id, error=error)
        await self._move(record, MediaState.FAILED, error=error[:2000])

    async def _move(self, record: MediaRecord, state: MediaState, **changes: Any) -> MediaRecord:
        moved = await self.database.transition(record.media_id, state, **changes)
        await self.events.publish(moved)
        return moved
