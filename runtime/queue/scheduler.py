"""Running a queue's schedules (:mod:`runtime.queue.schedule`) in every worker, each tick once.

Every worker of a queue with schedules runs a :class:`Scheduler` beside its pickup loop. At each
check it asks, per schedule, for the latest tick due by its clock; the tick is taken in Redis by
one atomic call that also enqueues the tick's job (``QueueClient.enqueue_for_tick``): a later
or equal tick already taken (by this worker or another) means someone else has it. So N
replicas enqueue each tick exactly once, and a worker whose clock lags a little finds the tick
taken when its clock reaches it. A check that cannot reach Redis is repeated at the next one.

The clock is injectable (``clock``, epoch seconds): tests drive ticks by moving it. A check
runs every ``poll_s`` at the most, and sooner when a tick is due before that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.errors import SwitchboardError
from runtime.logging import get_logger
from runtime.queue.producer import JobRequest, QueueClient
from runtime.queue.schedule import Schedule, from_epoch, tick_ms
from runtime.queue.spec import QueueSpec

log = get_logger("runtime.queue.scheduler")
Clock = Callable[[], float]


class Scheduler:
    def __init__(self, spec: QueueSpec, redis: Redis, *, clock: Clock = time.time, poll_s: float = 1.0) -> None:
        self.spec = spec
        self.clock = clock
        self.poll_s = poll_s
        self.client = QueueClient(spec, redis)
        start = from_epoch(clock())
        self.pending: dict[str, datetime] = {s.name: s.next_tick(start) for s in spec.schedules}
        """Per schedule, the next tick not yet run (nor found taken)."""
        self.checked_until = start
        """The clock reading of the last complete check: every tick up to it has been asked for."""
        self.taken = 0
        """Ticks this scheduler enqueued (the others were taken by another worker)."""

    async def run(self) -> None:
        """Check until cancelled."""
        while True:
            await self.check()
            wait = min(tick_ms(t) for t in self.pending.values()) / 1000 - self.clock()
            await asyncio.sleep(min(max(wait, 0.001), self.poll_s))

    async def check(self) -> None:
        now = from_epoch(self.clock())
        complete = True
        for schedule in self.spec.schedules:
            due, following = schedule.latest_due(self.pending[schedule.name], now)
            if due is None:
                continue
            try:
                await self._take(schedule, due)
            except (RedisError, OSError, SwitchboardError) as exc:
                complete = False  # asked again next check: the tick stays pending
                log.warning("schedule tick not taken yet", schedule=schedule.name, tick=tick_ms(due), error=str(exc))
                continue
            self.pending[schedule.name] = following
        if complete:
            self.checked_until = now

    async def _take(self, schedule: Schedule, tick: datetime) -> None:
        request = JobRequest(schedule.job, schedule.data, job_id=schedule.job_id(tick))
        if await self.client.enqueue_for_tick(schedule.name, tick_ms(tick), request):
            self.taken += 1
            log.info("schedule tick enqueued", queue=self.spec.name, schedule=schedule.name, tick=tick_ms(tick))
