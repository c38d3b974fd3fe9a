"""Copying a media's objects (original and variants) between the local store and S3, idempotently.

Three operations, one job each per media (queue ``media-sync``):

- ``upload`` (local → S3; automatic for every ready media when S3 is configured),
- ``download`` (S3 → local),
- ``delete`` (the S3 copies; the local ones stay).

Each object is compared by MD5 (:meth:`ObjectStore.stat`) with the copy at the destination: an
equal one is left alone, a missing or different one is (re)written and then checked again. So
re-running a sync never duplicates or corrupts an object, and one interrupted half-way simply
finishes next time. With ``delete_source`` the source objects are removed only once every copy
has been verified. An object missing at the source but present at the destination counts as
unchanged: an earlier sync with ``delete_source`` moved it (a media moved to S3 and then
watermarked has its new outputs locally and the rest in S3 only; its next upload copies just
the new ones).
"""

from __future__ import annotations

import enum
from typing import Any

from runtime.errors import NotFound, PermanentError, TransientError
from runtime.logging import get_logger
from services.media.db import MediaDatabase
from services.media.domain.records import MediaRecord, MediaState
from services.media.events import EventPublisher
from services.media.metrics import SYNC_JOBS
from services.media.store import ObjectStore

log = get_logger("media.sync")


class SyncOperation(enum.StrEnum):
    UPLOAD = "upload"
    DOWNLOAD = "download"
    DELETE = "delete"


class MediaSync:
    def __init__(
        self, database: MediaDatabase, local: ObjectStore, remote: ObjectStore, events: EventPublisher
    ) -> None:
        self.database = database
        self.local = local
        self.remote = remote
        self.events = events

    async def upload(self, media_id: str, *, delete_source: bool = False) -> dict[str, Any]:
        """Copy the media's objects to S3 (only a ``ready`` media: variants must exist)."""
        operation = SyncOperation.UPLOAD
        record = await self._record(media_id, operation)
        if record.state is not MediaState.READY:
            SYNC_JOBS.labels("skipped", operation.value).inc()
            return {"mediaId": media_id, "skipped": record.state.value}
        counts = await self._copy(record, self.local, self.remote, operation, delete_source=delete_source)
        if not record.synced_to_s3:
            await self.events.publish(await self.database.update(media_id, synced_to_s3=True))
        return self._done(media_id, operation, counts)

    async def download(self, media_id: str, *, delete_source: bool = False) -> dict[str, Any]:
        """Copy the media's objects from S3 back to the local store."""
        operation = SyncOperation.DOWNLOAD
        record = await self._record(media_id, operation)
        counts = await self._copy(record, self.remote, self.local, operation, delete_source=delete_source)
        if delete_source and record.synced_to_s3:
            await self.events.publish(await self.database.update(media_id, synced_to_s3=False))
        return self._done(media_id, operation, counts)

    async def delete_remote(self, media_id: str) -> dict[str, Any]:
        """Remove the media's S3 objects (those that are there)."""
        operation = SyncOperation.DELETE
        record = await self._record(media_id, operation)
        for key, _ in record.objects:
            if await self.local.stat(key) is None and await self.remote.stat(key) is not None:
                SYNC_JOBS.labels("failed", operation.value).inc()
                raise PermanentError(
                    f"media {media_id}: S3 holds the only copy of {key}; download it before deleting it from S3"
                )
        deleted = 0
        for key, _ in record.objects:
            deleted += await self.remote.delete(key)
        if record.synced_to_s3:
            await self.events.publish(await self.database.update(media_id, synced_to_s3=False))
        return self._done(media_id, operation, {"deleted": deleted})

    async def _record(self, media_id: str, operation: SyncOperation) -> MediaRecord:
        try:
            return await self.database.get(media_id)
        except NotFound:
            SYNC_JOBS.labels("failed", operation.value).inc()
            raise PermanentError(f"media {media_id} does not exist") from None

    async def _copy(
        self,
        record: MediaRecord,
        source: ObjectStore,
        target: ObjectStore,
        operation: SyncOperation,
        *,
        delete_source: bool,
    ) -> dict[str, int]:
        copied = unchanged = 0
        for key, content_type in record.objects:
            there = await source.stat(key)
            here = await target.stat(key)
            if there is None:
                if here is not None:
                    unchanged += 1  # moved by an earlier run with delete_source (finished or not)
                    continue
                SYNC_JOBS.labels("failed", operation.value).inc()
                raise PermanentError(f"media {record.media_id}: {key} is missing from the {source.name} store")
            if here is not None and here.md5 == there.md5:
                unchanged += 1
                continue
            await target.put_bytes(key, await source.get_bytes(key), content_type)
            written = await target.stat(key)
            if written is None or written.md5 != there.md5:
                raise TransientError(f"media {record.media_id}: {key} differs in the {target.name} store after copying")
            copied += 1
        removed = 0
        if delete_source:
            for key, _ in record.objects:
                removed += await source.delete(key)
        return {"copied": copied, "unchanged": unchanged, "sourceDeleted": removed}

    @staticmethod
    def _done(media_id: str, operation: SyncOperation, counts: dict[str, int]) -> dict[str, Any]:
        SYNC_JOBS.labels("completed", operation.value).inc()
        log.info("media sync done", media_id=media_id, operation=operation.value, **counts)
        return {"mediaId": media_id, "operation": operation.value, **counts}
