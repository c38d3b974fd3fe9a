"""The media job queues as the queue layer counts them, and the ``media_*_queue_size`` gauges
(exported by the process that runs :meth:`MediaQueues.start`: the media service, not its workers).

The service reads the counts straight from Redis (:class:`runtime.queue.QueueAdmin`), so a queue
shows its jobs even while none of its workers runs (the queue admin service only knows queues a
worker has declared). ``type`` says where a queue's jobs are: ``spool`` while the durable disk
spool holds jobs of it not yet in Redis, else ``redis``. The spool is a file under DATA_DIR, which
the service's replicas share (the RWX ``media-data`` volume), so jobs another replica spooled during
its Redis outage are seen here too, not only this process's own (its producer's health).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.background import BackgroundTask
from runtime.errors import Unavailable
from runtime.logging import get_logger
from runtime.queue import QueueAdmin, QueueClient
from services.media.metrics import PROCESSING_QUEUE_SIZE, SYNC_QUEUE_SIZE, WATERMARK_QUEUE_SIZE, export_queue_sizes
from services.media.queues import PROCESSING_QUEUE, SYNC_QUEUE, WATERMARK_QUEUE

__all__ = ["SECTIONS", "MediaQueues", "QueueStats"]

log = get_logger("media.queue_stats")

SECTIONS: Mapping[str, str] = {"processing": PROCESSING_QUEUE, "sync": SYNC_QUEUE, "watermark": WATERMARK_QUEUE}
"""Section name → queue name."""
_GAUGES: Mapping[str, Gauge] = {
    PROCESSING_QUEUE: PROCESSING_QUEUE_SIZE,
    SYNC_QUEUE: SYNC_QUEUE_SIZE,
    WATERMARK_QUEUE: WATERMARK_QUEUE_SIZE,
}


@dataclass(frozen=True, slots=True)
class QueueStats:
    section: str
    queue: str
    waiting: int
    """Waiting for a worker: waiting, delayed (back-off, scheduled) and paused."""
    active: int
    completed: int
    failed: int
    type: str


class MediaQueues:
    """Counts of every media queue; :meth:`start` keeps the size gauges current every ``interval_s``."""

    def __init__(self, redis: Redis, producers: Mapping[str, QueueClient], *, interval_s: float) -> None:
        self.redis = redis
        self.producers = producers
        """Queue name → this service's producer of it (its health and its spool file say redis or spool)."""
        self.interval_s = interval_s
        self._refresher = BackgroundTask(self._refresh_forever, "media-queue-gauges")

    async def stats(self) -> list[QueueStats]:
        """Every media queue's counts (and the gauges set from them); Unavailable without Redis."""
        # The spool first: a flush puts a job in Redis before it leaves the spool, so a queue whose
        # spool is empty now has its jobs in the counts read next (read the other way round, a job
        # flushed between the reads was in neither, and the queue read 'redis' without it).
        spooled = await asyncio.to_thread(self._spooled)
        try:
            counts = await asyncio.gather(*(QueueAdmin(queue, self.redis).counts() for queue in SECTIONS.values()))
        except (RedisError, OSError) as exc:
            raise Unavailable(f"the media queues cannot be read: {exc}") from None
        out = []
        for (section, queue), c in zip(SECTIONS.items(), counts, strict=True):
            backend = "spool" if spooled.get(queue) else "redis"
            waiting = c.waiting + c.delayed  # paused jobs are counted in waiting already
            out.append(QueueStats(section, queue, waiting, c.active, c.completed, c.failed, backend))
            _GAUGES[queue].set(waiting)
        return out

    def _spooled(self) -> dict[str, bool]:
        """Queue name → whether jobs of it are in the spool (this process's or another's)."""
        return {
            queue: producer.health() == "degraded" or producer.spooled() > 0
            for queue, producer in self.producers.items()
        }

    def start(self) -> None:
        """Refresh the gauges from now on, and export them (this process measures them)."""
        export_queue_sizes()
        self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.stats()
            except Unavailable as exc:
                log.warning("media queue sizes not read", error=exc.message)
            await asyncio.sleep(self.interval_s)
