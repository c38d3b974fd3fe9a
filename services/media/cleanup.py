"""Purging media for good: their objects (local store and S3) and then their records.

Only ``deleted`` (soft-deleted) and ``failed`` media can be purged, and only once they have not
changed for the given age (a soft delete's time is its record's ``updated_at``). Objects go
first and the record last, so a purge interrupted half-way is finished by the next one.
``freed_bytes`` counts every byte removed, from the local store and from S3 alike.

The daily purge (:func:`services.media.jobs.purge_media`, scheduled on ``media-sync`` by
``MEDIA_CLEANUP_CRON``) removes soft-deleted media older than ``MEDIA_RETENTION_DAYS`` and the
stale files an interrupted upload left in the store's ``tmp/``.

A purge asked for by hand (:meth:`MediaCleanup.request`, the Cleanup RPC) runs within the call
when it finds at most ``MEDIA_CLEANUP_INLINE_MAX`` media; a larger one is queued as one job on
``media-sync`` (:func:`services.media.jobs.purge_media_requested`) and the call answers its job id
and how many media it found. The job purges exactly the media in the states asked for that had
not changed at the cutoff computed when it was asked (not when it runs); being resumable, an
attempt cut short is finished by the next.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import InvalidArgument
from runtime.logging import get_logger
from runtime.queue import QueueClient
from services.media.db import MediaDatabase, now_ms
from services.media.domain.records import MediaRecord, MediaState
from services.media.store import LocalStore, ObjectStore

log = get_logger("media.cleanup")

PURGEABLE = (MediaState.DELETED, MediaState.FAILED)
BATCH = 200
DRY_RUN_LIMIT = 100_000
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class PurgeResult:
    deleted: int
    freed_bytes: int


@dataclass(frozen=True, slots=True)
class CleanupAnswer:
    """What a requested cleanup did: purged (``deleted``, ``freed_bytes``), counted (a dry run), or
    queued (``job_id`` set; ``queued`` media found, none purged yet)."""

    deleted: int
    freed_bytes: int
    job_id: str = ""
    queued: int = 0


class MediaCleanup:
    def __init__(
        self,
        database: MediaDatabase,
        local: LocalStore,
        remote: ObjectStore | None,
        *,
        retention_days: int = 30,
        temp_max_age_s: float = 24 * 3600,
        jobs: QueueClient | None = None,
        job_name: str = "",
        inline_max: int = 200,
    ) -> None:
        self.database = database
        self.local = local
        self.remote = remote
        self.retention_days = retention_days
        self.temp_max_age_s = temp_max_age_s
        self.jobs = jobs
        """The media-sync queue a large requested purge goes to (``job_name``); ``None``: always inline."""
        self.job_name = job_name
        self.inline_max = inline_max

    @property
    def retention_ms(self) -> int:
        return self.retention_days * DAY_MS

    async def daily(self) -> dict[str, int]:
        """The scheduled purge: soft-deleted media past the retention, then stale temp files."""
        media = await self.purge(older_than_ms=self.retention_ms, states=(MediaState.DELETED,))
        temp = await self.purge_temp(self.temp_max_age_s)
        return {
            "deleted": media.deleted,
            "freedBytes": media.freed_bytes + temp.freed_bytes,
            "tempFiles": temp.deleted,
        }

    async def request(self, *, older_than_ms: int, states: Sequence[MediaState], dry_run: bool) -> CleanupAnswer:
        """A cleanup asked for by hand (see the module docstring): counted, purged now, or queued."""
        _check(older_than_ms, states)
        cutoff = now_ms() - older_than_ms
        if dry_run:
            counted = await self.count(cutoff, states)
            return CleanupAnswer(counted.deleted, counted.freed_bytes)
        if self.jobs is not None:
            found = await self.database.older_than(states, cutoff, limit=self.inline_max + 1)
            if len(found) > self.inline_max:
                job_id = f"cleanup:{uuid.uuid4().hex}"
                data = {"cutoff_ms": cutoff, "states": [s.value for s in states]}
                await self.jobs.enqueue(self.job_name, data, job_id=job_id)
                queued = (await self.count(cutoff, states)).deleted
                log.info("media purge queued", job_id=job_id, media=queued, states=data["states"])
                return CleanupAnswer(0, 0, job_id=job_id, queued=queued)
        purged = await self.purge_before(cutoff, states)
        return CleanupAnswer(purged.deleted, purged.freed_bytes)

    async def count(self, cutoff_ms: int, states: Sequence[MediaState]) -> PurgeResult:
        """What a purge would remove (bytes as recorded), at most DRY_RUN_LIMIT media."""
        batch = await self.database.older_than(states, cutoff_ms, limit=DRY_RUN_LIMIT)
        return PurgeResult(len(batch), sum(_recorded_bytes(r) for r in batch))

    async def purge(self, *, older_than_ms: int, states: Sequence[MediaState]) -> PurgeResult:
        """Purge the media in ``states`` unchanged for ``older_than_ms``."""
        _check(older_than_ms, states)
        return await self.purge_before(now_ms() - older_than_ms, states)

    async def purge_before(self, cutoff: int, states: Sequence[MediaState]) -> PurgeResult:
        """Purge the media in ``states`` last changed at or before ``cutoff`` (epoch ms)."""
        _check(0, states)
        started = time.perf_counter()
        deleted = freed = 0
        while True:
            batch = await self.database.older_than(states, cutoff, limit=BATCH)
            for record in batch:
                freed += await self._purge_one(record)
                deleted += 1
            if len(batch) < BATCH:
                break
        log.info(
            "media purged",
            deleted=deleted,
            freed_bytes=freed,
            states=[s.value for s in states],
            seconds=round(time.perf_counter() - started, 3),
        )
        return PurgeResult(deleted, freed)

    async def purge_temp(self, max_age_s: float) -> PurgeResult:
        """Remove the files under the store's tmp/ older than ``max_age_s`` (interrupted uploads)."""

        def remove_stale() -> PurgeResult:
            limit = time.time() - max_age_s
            count = size = 0
            for path in self.local.tmp.iterdir():
                info = _stat(path)
                if info is not None and info[0] < limit:
                    path.unlink(missing_ok=True)
                    count += 1
                    size += info[1]
            return PurgeResult(count, size)

        removed = await asyncio.to_thread(remove_stale)
        if removed.deleted:
            log.info("stale temporary files removed", files=removed.deleted, freed_bytes=removed.freed_bytes)
        return removed

    async def _purge_one(self, record: MediaRecord) -> int:
        freed = 0
        stores = [self.local] if self.remote is None else [self.local, self.remote]
        for key, _ in record.objects:
            for store in stores:
                info = await store.stat(key)
                if info is not None and await store.delete(key):
                    freed += info.size
        await self.database.remove(record.media_id)
        return freed


def _check(older_than_ms: int, states: Sequence[MediaState]) -> None:
    if older_than_ms < 0:
        raise InvalidArgument("olderThan", "must not be negative")
    for state in states:
        if state not in PURGEABLE:
            raise InvalidArgument("status", f"only deleted or failed media can be purged, not {state.value}")


def _recorded_bytes(record: MediaRecord) -> int:
    return record.size_bytes + sum(v.size_bytes for v in record.variants)


def _stat(path: Path) -> tuple[float, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_mtime, info.st_size) if path.is_file() else None
