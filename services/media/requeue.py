"""The pending sweep: media whose processing job was lost get it again.

A media is recorded ``pending`` before its ``process_media`` job is enqueued. That job can be
lost after the upload was answered: a media pod spools it while Redis is unreachable, and the
spool is the pod's own emptyDir, gone with the pod if the pod is deleted before Redis answers
again. The record and the original are kept, so the job can be made again from them.

:meth:`PendingRequeue.sweep` (the job ``requeue_pending_media`` on ``media-processing``, run on
``MEDIA_PENDING_SWEEP_CRON``, once a tick however many workers run) takes the media ``pending``
for longer than ``MEDIA_PENDING_REQUEUE_AFTER_S`` and enqueues their job under the record's own
job id (``media:<id>``). The queue refuses an id that exists, so a job still waiting, delayed or
active is never doubled, and a spooled copy flushed later is refused as a duplicate of the one
the sweep made. A job of that id that finished while its media is still pending (it failed every
attempt before it could mark the media, say while the database was unreachable) is run again
under the same id. A job that runs for a media no longer ``pending`` or ``processing`` does
nothing (:meth:`services.media.processing.MediaProcessor.process`).

One sweep looks at most ``SWEEP_LIMIT`` media, the longest pending first; under a backlog that
large the ones still queued are processed and leave the window, so a lost one is reached later.
"""

from __future__ import annotations

import time

from runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from runtime.logging import get_logger
from runtime.queue import JobState, QueueAdmin, QueueClient
from services.media.db import MediaDatabase, now_ms
from services.media.domain.records import MediaRecord, MediaState
from services.media.metrics import PENDING_REQUEUED

log = get_logger("media.requeue")

SWEEP_LIMIT = 1000
FINISHED = (JobState.COMPLETED, JobState.FAILED)


class PendingRequeue:
    def __init__(
        self, database: MediaDatabase, processing: QueueClient, admin: QueueAdmin, *, job_name: str, after_s: float
    ) -> None:
        self.database = database
        self.processing = processing
        """The media-processing queue, without a spool: a sweep that cannot reach Redis fails and is retried."""
        self.admin = admin
        self.job_name = job_name
        self.after_s = after_s

    async def sweep(self) -> dict[str, int]:
        """Enqueue again the jobs of the media pending past the grace period that have none queued."""
        started = time.perf_counter()
        cutoff = now_ms() - round(self.after_s * 1000)
        stale = await self.database.older_than((MediaState.PENDING,), cutoff, limit=SWEEP_LIMIT)
        requeued = 0
        for record in stale:
            requeued += await self._requeue(record)
        if requeued:
            PENDING_REQUEUED.inc(requeued)
        log.info(
            "pending media swept",
            requeued=requeued,
            still_queued=len(stale) - requeued,
            seconds=round(time.perf_counter() - started, 3),
        )
        return {"requeued": requeued, "stillQueued": len(stale) - requeued}

    async def _requeue(self, record: MediaRecord) -> int:
        """1 when ``record``'s job was enqueued (or a finished one run) again, 0 when it is queued."""
        try:
            await self.processing.enqueue(self.job_name, {"media_id": record.media_id}, job_id=record.job_id)
        except AlreadyExists:
            try:
                job = await self.admin.job(record.job_id)
                if job.state not in FINISHED:
                    return 0
                await self.admin.retry(record.job_id)
            except (NotFound, FailedPrecondition):  # it moved meanwhile: the next sweep looks again
                return 0
            log.warning("pending media's finished job run again", media_id=record.media_id, job_id=record.job_id)
            return 1
        log.warning("pending media's lost job enqueued again", media_id=record.media_id, job_id=record.job_id)
        return 1
