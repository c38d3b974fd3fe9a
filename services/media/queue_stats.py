"""The media job queues as the queue layer counts them, and the ``media_*_queue_size`` gauges
(exported by the process that runs :meth:`MediaQueues.start`: the media service, not its workers).

The service reads the counts straight from Redis (:class:`runtime.queue.QueueAdmin`), so a queue
shows its jobs even while none of its workers runs (the queue admin service only knows queues a
worker has declared). ``spooled`` counts the jobs the replicas' durable disk spools hold, not yet
in Redis: this process's own spool, read live, and every other replica's as its marker says
(:mod:`services.media.spool_markers`; each replica's spool is its own file). ``type`` is ``spool``
while any spool holds jobs of the queue (or this process's producer is spooling), else ``redis``.

While this process cannot reach Redis the answer is still what is known: the spooled counts, with
``waiting``, ``active``, ``completed`` and ``failed`` as ``None`` (unknown) and ``counted`` false,
rather than an error: a Redis outage is exactly when an operator asks where the jobs went.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.background import BackgroundTask
from runtime.logging import get_logger
from runtime.queue import QueueAdmin, QueueClient
from runtime.supervision import TaskSupervisor
from services.media.metrics import PROCESSING_QUEUE_SIZE, SYNC_QUEUE_SIZE, WATERMARK_QUEUE_SIZE, export_queue_sizes
from services.media.queues import PROCESSING_QUEUE, SYNC_QUEUE, WATERMARK_QUEUE
from services.media.spool_markers import SpoolMarkers

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
    waiting: int | None
    """Waiting for a worker: waiting, delayed (back-off, scheduled) and paused; ``None``: Redis
    could not be read (as for the three counts below)."""
    active: int | None
    completed: int | None
    failed: int | None
    type: str
    spooled: int
    """Jobs in the replicas' disk spools, not yet in Redis (counted whether Redis answers or not)."""

    @property
    def counted(self) -> bool:
        return self.waiting is not None


class MediaQueues:
    """Counts of every media queue; :meth:`start` keeps the size gauges current every ``interval_s``
    and this process's spool marker published."""

    def __init__(
        self,
        redis: Redis,
        producers: Mapping[str, QueueClient],
        *,
        interval_s: float,
        markers: SpoolMarkers | None = None,
        tasks: TaskSupervisor | None = None,
    ) -> None:
        self.redis = redis
        self.producers = producers
        """Queue name → this service's producer of it (its health and its spool say redis or spool)."""
        self.interval_s = interval_s
        self.markers = markers
        """Where this process publishes its spool's counts and reads the other replicas'."""
        self._refresher = BackgroundTask(self._refresh_forever, "media-queue-gauges", tasks=tasks)

    async def stats(self) -> list[QueueStats]:
        """Every media queue's counts (and the gauges set from them); without Redis, what the spools say."""
        # The spools first: a flush puts a job in Redis before it leaves the spool, so a queue whose
        # spool is empty now has its jobs in the counts read next (read the other way round, a job
        # flushed between the reads was in neither, and the queue read 'redis' without it).
        spooled, spooling = await asyncio.to_thread(self._spooled)
        try:
            counts = await asyncio.gather(*(QueueAdmin(queue, self.redis).counts() for queue in SECTIONS.values()))
        except (RedisError, OSError) as exc:
            log.warning("media queue counts not read from Redis", error=str(exc))
            return [
                QueueStats(section, queue, None, None, None, None, _type(queue, spooled, spooling), spooled[queue])
                for section, queue in SECTIONS.items()
            ]
        out = []
        for (section, queue), c in zip(SECTIONS.items(), counts, strict=True):
            waiting = c.waiting + c.delayed  # paused jobs are counted in waiting already
            backend = _type(queue, spooled, spooling)
            out.append(QueueStats(section, queue, waiting, c.active, c.completed, c.failed, backend, spooled[queue]))
            _GAUGES[queue].set(waiting)
        return out

    def _spooled(self) -> tuple[dict[str, int], set[str]]:
        """Queue name → jobs in the spools (this process's and the other replicas'); and the
        queues this process's producer is spooling right now."""
        own = {queue: producer.spooled() for queue, producer in self.producers.items()}
        spooling = {queue for queue, producer in self.producers.items() if producer.health() == "degraded"}
        others = self.markers.others() if self.markers is not None else {}
        return {queue: own.get(queue, 0) + others.get(queue, 0) for queue in SECTIONS.values()}, spooling

    def _publish(self) -> None:
        if self.markers is not None:
            self.markers.publish({queue: producer.spooled() for queue, producer in self.producers.items()})

    def start(self) -> None:
        """Refresh the gauges from now on, and export them (this process measures them)."""
        export_queue_sizes()
        self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()
        # A spool left holding jobs keeps its marker: its jobs wait for this process's successor
        # on the same spool (a restarted container), and the marker goes stale if none comes.
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self._publish)

    async def _refresh_forever(self) -> None:
        # Checks the flag, not only its cancel: a cancel lost inside a Redis call (runtime.supervision)
        # let it go on counting on the pool the service closes next.
        while not self._refresher.stopping:
            try:
                await asyncio.to_thread(self._publish)
            except OSError as exc:
                log.warning("media spool marker not written", error=str(exc))
            await self.stats()
            await self._refresher.pause(self.interval_s)


def _type(queue: str, spooled: Mapping[str, int], spooling: set[str]) -> str:
    return "spool" if spooled[queue] > 0 or queue in spooling else "redis"
