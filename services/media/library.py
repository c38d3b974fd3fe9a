"""The media service's core: uploads, reads and deletes over the database, store and queue.

:class:`MediaLibrary` is what the gRPC servicer calls; it holds no protocol types. An upload
streams to a temp file under the local store while :class:`UploadCheck` refuses it as early as
possible; then the original is committed to the store and the record (``pending``) to the
database *before* the processing job is enqueued, so a worker on another machine finds both.
If the record or the enqueue fails, what was written is removed again: nothing half-made stays.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from runtime.errors import FailedPrecondition, InvalidArgument, NotFound, TransientError
from runtime.logging import get_logger
from runtime.queue import QueueClient
from services.media.db import MediaDatabase, now_ms
from services.media.domain.records import MediaRecord, MediaState, StoredVariant
from services.media.domain.upload_check import UploadCheck
from services.media.domain.variants import DEFAULT_PRESET, VariantSpec, check_variant_set
from services.media.domain.watermark import WATERMARKED_SUFFIX, WatermarkSpec, watermarked_name
from services.media.events import EventPublisher
from services.media.queues import PROCESS_JOB, WATERMARK_JOB
from services.media.store import LocalStore, S3Store, read_object
from services.media.watermarking import overlay_variant, plain_variants, spec_to_job

__all__ = ["MediaLibrary", "UploadRequest", "UploadResult", "check_media_id"]

log = get_logger("media.library")

MAX_PAGE_SIZE = 100
_OWNER_ID = re.compile(r"[^\x00-\x1f\x7f]*")
MAX_LABELS = 32


@dataclass(frozen=True, slots=True)
class UploadRequest:
    filename: str = ""
    owner_id: str = ""
    entity_type: str = ""
    variants: Sequence[VariantSpec] = ()
    keep_metadata: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    declared_size: int = 0


@dataclass(frozen=True, slots=True)
class UploadResult:
    record: MediaRecord
    duplicate: bool
    """True when the same owner already had these bytes: ``record`` is that media."""


def _clean_filename(name: str) -> str:
    """The last path component, printable, at most 255 characters ('' when none is left)."""
    base = PureWindowsPath(PurePosixPath(name).name).name
    return "".join(c for c in base if c.isprintable())[:255]


class MediaLibrary:
    def __init__(
        self,
        database: MediaDatabase,
        store: LocalStore,
        processing: QueueClient,
        events: EventPublisher,
        *,
        watermarking: QueueClient,
        presets: Mapping[str, tuple[VariantSpec, ...]],
        max_upload_bytes: int,
        max_pixels: int,
        remote: S3Store | None = None,
        presign_expires_s: int = 3600,
    ) -> None:
        self.database = database
        self.store = store
        self.processing = processing
        self.watermarking = watermarking
        self.events = events
        self.presets = presets
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.remote = remote
        """The S3 bucket ready media are synced to (``S3_BUCKET``), if any."""
        self.presign_expires_s = presign_expires_s

    def specs_for(self, request: UploadRequest) -> tuple[VariantSpec, ...]:
        if request.variants:
            return check_variant_set(request.variants)
        preset = request.entity_type or DEFAULT_PRESET
        if preset not in self.presets:
            known = ", ".join(sorted(self.presets))
            raise InvalidArgument("entityType", f"unknown entity type {preset!r} (known: {known})")
        return self.presets[preset]

    def check_request(self, request: UploadRequest) -> tuple[VariantSpec, ...]:
        if len(request.owner_id) > 128:
            raise InvalidArgument("ownerId", "at most 128 characters")
        if not _OWNER_ID.fullmatch(request.owner_id):
            raise InvalidArgument("ownerId", "must not contain control characters (a newline, say)")
        if len(request.labels) > MAX_LABELS:
            raise InvalidArgument("labels", f"at most {MAX_LABELS} labels")
        return self.specs_for(request)

    async def upload(self, request: UploadRequest, chunks: AsyncIterable[bytes]) -> UploadResult:
        specs = self.check_request(request)
        check = UploadCheck(
            max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels, declared_size=request.declared_size
        )
        temp = self.store.temp_path()
        try:
            with temp.open("wb") as sink:
                async for chunk in chunks:
                    check.feed(chunk)
                    sink.write(chunk)
            sha256 = check.finish()
            duplicate = await self.database.find_duplicate(request.owner_id, sha256)
            if duplicate is not None:
                return UploadResult(duplicate, duplicate=True)
            assert check.kind is not None  # finish() refused every upload without one
            media_id = uuid.uuid4().hex
            now = now_ms()
            record = MediaRecord(
                media_id=media_id,
                state=MediaState.PENDING,
                filename=_clean_filename(request.filename),
                content_type=check.kind.content_type,
                size_bytes=check.size,
                sha256=sha256,
                owner_id=request.owner_id,
                entity_type=request.entity_type,
                specs=specs,
                keep_metadata=request.keep_metadata,
                labels=dict(request.labels),
                width=check.dimensions[0] if check.dimensions else 0,
                height=check.dimensions[1] if check.dimensions else 0,
                job_id=f"media:{media_id}",
                created_at_ms=now,
                updated_at_ms=now,
            )
            await self.store.put_file(record.original_key, temp, record.content_type)
            await self._record_and_enqueue(record)
        finally:
            temp.unlink(missing_ok=True)
        log.info("media uploaded", media_id=media_id, bytes=record.size_bytes, content_type=record.content_type)
        await self.events.publish(record)
        return UploadResult(record, duplicate=False)

    async def _record_and_enqueue(self, record: MediaRecord) -> None:
        inserted = False
        try:
            await self.database.insert(record)
            inserted = True
            await self.processing.enqueue(PROCESS_JOB, {"media_id": record.media_id}, job_id=record.job_id)
        except BaseException:
            with contextlib.suppress(Exception):
                if inserted:
                    await self.database.remove(record.media_id)
                await self.store.delete(record.original_key)
            raise

    async def get(self, media_id: str) -> MediaRecord:
        return await self.database.get(check_media_id(media_id))

    async def list(
        self, *, entity_type: str, owner_id: str, state: MediaState | None, page: int, page_size: int
    ) -> tuple[list[MediaRecord], int]:
        if page < 1:
            raise InvalidArgument("page", "must be 1 or more")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument("pageSize", f"must be 1-{MAX_PAGE_SIZE}")
        return await self.database.list(
            entity_type=entity_type, owner_id=owner_id, state=state, page=page, page_size=page_size
        )

    async def delete(self, media_id: str) -> MediaRecord:
        """Soft delete: the record says ``deleted``; cleanup purges the bytes later."""
        record = await self.database.transition(check_media_id(media_id), MediaState.DELETED)
        await self.events.publish(record)
        return record

    async def read_variant(self, media_id: str, name: str) -> tuple[StoredVariant, bytes]:
        record = await self.get(media_id)
        variant = record.variant(name)
        if variant is None or record.state is MediaState.DELETED:
            raise NotFound(f"media {media_id} has no variant {name!r}", details={"mediaId": media_id, "variant": name})
        return variant, await read_object(self.store, self.remote, variant.storage_key)

    async def watermark(self, media_id: str, spec: WatermarkSpec) -> str:
        """Queue ``spec`` onto a ready media's variants; the job's id. Checked first: the media is
        ready, the variants named exist, the watermark media (``watermarkId``) is a ready image."""
        record = await self.get(media_id)
        if record.state is not MediaState.READY:
            raise FailedPrecondition(
                f"media {media_id} is {record.state.value}: only a ready media can be watermarked",
                details={"mediaId": media_id, "state": record.state.value},
            )
        spec.chosen([v.name for v in plain_variants(record)])
        if spec.overlay_media_id:
            try:
                overlay_variant(await self.database.get(check_media_id(spec.overlay_media_id, "watermarkId")))
            except NotFound:
                raise InvalidArgument("watermarkId", f"no media {spec.overlay_media_id}") from None
        job_id = f"watermark:{media_id}:{uuid.uuid4().hex[:16]}"
        data = {"media_id": media_id, "watermark": spec_to_job(spec)}
        await self.watermarking.enqueue(WATERMARK_JOB, data, job_id=job_id)
        log.info("watermark queued", media_id=media_id, job_id=job_id, position=spec.position.value)
        return job_id

    def variant_urls(self, record: MediaRecord) -> dict[str, str]:
        """Presigned S3 GET URLs of the variants, once the media's objects are all in the bucket;
        empty before (the gateway serves them from the local store then)."""
        if self.remote is None or not record.synced_to_s3 or record.state is MediaState.DELETED:
            return {}
        return {v.name: self.remote.presigned_url(v.storage_key, self.presign_expires_s) for v in record.variants}

    async def remove_watermark(self, media_id: str, variants: Sequence[str]) -> tuple[str, ...]:
        """Drop the watermarked outputs of ``variants`` (empty: all); their names. The record changes
        first, then the files go, from the local store and from S3 (a file left by a crash in
        between, or in an S3 that could not be reached, is only unreferenced bytes: logged)."""
        record = await self.get(media_id)
        marked = {v.name: v for v in record.variants if v.name.endswith(WATERMARKED_SUFFIX)}
        wanted = {watermarked_name(v) for v in variants} if variants else set(marked)
        missing = sorted(wanted - set(marked))
        if missing:
            raise InvalidArgument("variants", f"no watermarked output {missing[0]!r} on media {media_id}")
        if not wanted:
            return ()
        kept = tuple(v for v in record.variants if v.name not in wanted)
        await self.events.publish(await self.database.update(media_id, variants=kept))
        for name in sorted(wanted):
            key = marked[name].storage_key
            await self.store.delete(key)
            if self.remote is not None:
                try:
                    await self.remote.delete(key)
                except TransientError as exc:
                    log.warning("watermarked output left in S3", media_id=media_id, key=key, error=exc.message)
        log.info("watermark removed", media_id=media_id, removed=sorted(wanted))
        return tuple(sorted(wanted))

    async def stats(self) -> Mapping[str, Any]:
        return await self.database.stats()


def check_media_id(media_id: str, field: str = "mediaId") -> str:
    if not (len(media_id) == 32 and all(c in "0123456789abcdef" for c in media_id)):
        raise InvalidArgument(field, f"{media_id[:40]!r} is not a media id (32 hex digits)")
    return media_id
