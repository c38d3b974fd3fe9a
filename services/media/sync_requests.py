"""Manual S3 sync: a request naming media (or all of them) becomes one ``media-sync`` job per media.

Checked before anything is queued, so a bad request queues nothing: S3 must be configured
(FailedPrecondition naming S3_BUCKET), either ``media_ids`` or ``all`` (InvalidArgument), every
named media must exist (NotFound naming it) and be one the operation applies to
(FailedPrecondition naming it): ``upload`` a ready media; ``download`` and ``delete`` a ready
media with a copy in S3. ``all`` selects exactly those. Every job of one request shares the
batch id its answer carries (``<batch>:<media id>``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.errors import FailedPrecondition, InvalidArgument
from runtime.queue import JobRequest, QueueClient
from services.media.db import MediaDatabase
from services.media.domain.records import MediaRecord, MediaState
from services.media.library import check_media_id
from services.media.queues import SYNC_JOBS
from services.media.sync import SyncOperation

MAX_MEDIA_PER_REQUEST = 1000


@dataclass(frozen=True, slots=True)
class SyncBatch:
    batch_id: str
    job_ids: tuple[str, ...]


class SyncRequests:
    def __init__(self, database: MediaDatabase, queue: QueueClient | None) -> None:
        self.database = database
        self.queue = queue
        """The ``media-sync`` queue; None when S3 is not configured."""

    async def request(
        self, operation: SyncOperation, media_ids: Sequence[str], *, all_media: bool, delete_source: bool
    ) -> SyncBatch:
        if self.queue is None:
            raise FailedPrecondition("S3 is not configured: the media service has no S3_BUCKET")
        if delete_source and operation is SyncOperation.DELETE:
            raise InvalidArgument("deleteSource", "applies to upload and download, not delete")
        ids = await self._select(operation, media_ids, all_media)
        batch_id = f"sync-{operation.value}-{uuid.uuid4().hex[:12]}"
        data: dict[str, object] = {} if operation is SyncOperation.DELETE else {"delete_source": delete_source}
        job = SYNC_JOBS[operation.value]
        requests = [JobRequest(job, {"media_id": m, **data}, job_id=f"{batch_id}:{m}") for m in ids]
        await self.queue.enqueue_many(requests)
        return SyncBatch(batch_id, tuple(r.job_id for r in requests if r.job_id))

    async def _select(self, operation: SyncOperation, media_ids: Sequence[str], all_media: bool) -> Sequence[str]:
        needs_copy = operation is not SyncOperation.UPLOAD
        if all_media:
            if media_ids:
                raise InvalidArgument("mediaIds", "give mediaIds or all, not both")
            return await self.database.ids(state=MediaState.READY, synced_to_s3=True if needs_copy else None)
        if not media_ids:
            raise InvalidArgument("mediaIds", "name at least one media, or set all")
        if len(media_ids) > MAX_MEDIA_PER_REQUEST:
            raise InvalidArgument("mediaIds", f"at most {MAX_MEDIA_PER_REQUEST} per request (or all)")
        unique = list(dict.fromkeys(check_media_id(m) for m in media_ids))
        for media_id in unique:
            _check_applies(await self.database.get(media_id), operation, needs_copy)
        return unique


def _check_applies(record: MediaRecord, operation: SyncOperation, needs_copy: bool) -> None:
    if record.state is not MediaState.READY:
        problem = f"is {record.state.value}, not ready"
    elif needs_copy and not record.synced_to_s3:
        problem = "has no copy in S3"
    else:
        return
    raise FailedPrecondition(
        f"media {record.media_id} {problem}: cannot {operation.value}",
        details={"mediaId": record.media_id, "state": record.state.value},
    )
