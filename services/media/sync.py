"""Copying a ready media's original and variants to S3, idempotently.

Each object is compared by MD5 with what the bucket holds (:meth:`ObjectStore.stat`): an equal
one is left alone, a missing or different one is (re)written. Re-running a sync therefore never
duplicates or corrupts an object, and a sync interrupted half-way simply finishes next time.
"""

from __future__ import annotations

from typing import Any

from runtime.errors import PermanentError
from runtime.logging import get_logger
from services.media.db import MediaDatabase
from services.media.domain.records import MediaState
from services.media.events import EventPublisher
from services.media.metrics import SYNC_JOBS
from services.media.store import LocalStore, ObjectStore

log = get_logger("media.sync")


class MediaSync:
    def __init__(self, database: MediaDatabase, local: LocalStore, remote: ObjectStore, events: EventPublisher) -> None:
        self.database = database
        self.local = local
        self.remote = remote
        self.events = events

    async def upload(self, media_id: str) -> dict[str, Any]:
        record = await self.database.get(media_id)
        if record.state is not MediaState.READY:
            SYNC_JOBS.labels("skipped", "upload").inc()
            return {"mediaId": media_id, "skipped": record.state.value}
        keys = [(record.original_key, record.content_type)]
        keys += [(v.storage_key, v.content_type) for v in record.variants]
        uploaded = unchanged = 0
        for key, content_type in keys:
            local = await self.local.stat(key)
            if local is None:
                SYNC_JOBS.labels("failed", "upload").inc()
                raise PermanentError(f"media {media_id}: {key} is missing from the local store")
            remote = await self.remote.stat(key)
            if remote is not None and remote.md5 == local.md5:
                unchanged += 1
                continue
            await self.remote.put_bytes(key, await self.local.get_bytes(key), content_type)
            uploaded += 1
        if not record.synced_to_s3:
            await self.events.publish(await self.database.update(media_id, synced_to_s3=True))
        SYNC_JOBS.labels("completed", "upload").inc()
        log.info("media synced to s3", media_id=media_id, uploaded=uploaded, unchanged=unchanged)
        return {"mediaId": media_id, "uploaded": uploaded, "unchanged": unchanged}
