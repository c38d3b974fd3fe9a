"""Where an answer comes from: the in-memory state, Redis directly, or the database.

1. The follower's in-memory state when it is following the stream (the fast path: no I/O).
2. Otherwise the Redis hashes, read in one MULTI/EXEC (the replica is starting or reloading).
3. When Redis is unreachable, the database's static configuration: ``source=DATABASE``,
   ``stale=true``, device status unknown, no channels, no waiting callers. The loaded
   configuration is reused for ``database_cache_seconds`` (1 s) so an outage does not turn
   every read into a database query. After a failed Redis
   read, reads go straight to the database for ``redis_retry_seconds`` (the follower's
   reconnect brings the fast path back as soon as Redis answers again). A Redis that answers
   but holds no rows and was never written by the ingest (restarted empty, not seeded yet) is
   answered from the database too: an empty picture would be a lie.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter
from switchboard.status.v1 import status_pb2

from runtime.errors import Unavailable
from runtime.logging import get_logger
from runtime.status_model import is_stale
from runtime.status_model.rules import epoch_ms
from services.status.db import StatusDatabase
from services.status.domain.state import LiveState
from services.status.follower import Follower
from services.status.redis_store import RedisStore

log = get_logger("status.reads")

READS = Counter("status_reads_total", "Reads by where they were answered from", ["path"])
_MEMORY_READS = READS.labels("memory")  # the hot path: label lookup once, not per read


@dataclass(frozen=True, slots=True)
class View:
    """The rows an answer is built from, and its freshness."""

    state: LiveState
    source: status_pb2.Source.ValueType
    stale: bool
    now: float

    @property
    def meta(self) -> status_pb2.ReadMeta:
        return status_pb2.ReadMeta(
            source=self.source,
            stale=self.stale,
            timestamp=self.now,
            last_ingest_at=self.state.last_ingest_at,
            timestamp_ms=epoch_ms(self.now),
            last_ingest_at_ms=epoch_ms(self.state.last_ingest_at),
        )

    def snapshot_bytes(self) -> bytes:
        return self.state.snapshot_bytes(now=self.now, stale=self.stale, source=self.source)


class StatusReader:
    def __init__(
        self,
        store: RedisStore,
        follower: Follower,
        database: StatusDatabase,
        *,
        stale_after_seconds: float,
        redis_retry_seconds: float = 1.0,
        database_cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.follower = follower
        self.database = database
        self.stale_after_seconds = stale_after_seconds
        self.redis_retry_seconds = redis_retry_seconds
        self.clock = clock
        self._skip_redis_until = 0.0
        self.database_cache_seconds = database_cache_seconds
        self._database_state: LiveState | None = None
        self._database_loaded_at = 0.0

    def is_stale(self, last_ingest_at: float, now: float) -> bool:
        return is_stale(last_ingest_at, now, self.stale_after_seconds)

    def live_view(self) -> View | None:
        """The in-memory answer, when there is one (no I/O)."""
        now = self.clock()
        state = self.follower.current(now)
        if state is None:
            return None
        _MEMORY_READS.inc()
        return View(state, status_pb2.SOURCE_REDIS, self.is_stale(state.last_ingest_at, now), now)

    async def freshness(self) -> status_pb2.ReadMeta:
        """What a read would say about freshness now (for watch streams; not counted as a read)."""
        now = self.clock()
        state = self.follower.current(now)
        if state is None:
            return (await self.view()).meta
        return status_pb2.ReadMeta(
            source=status_pb2.SOURCE_REDIS,
            stale=self.is_stale(state.last_ingest_at, now),
            timestamp=now,
            last_ingest_at=state.last_ingest_at,
            timestamp_ms=epoch_ms(now),
            last_ingest_at_ms=epoch_ms(state.last_ingest_at),
        )

    async def view(self) -> View:
        live = self.live_view()
        if live is not None:
            return live
        now = self.clock()
        if now >= self._skip_redis_until or self.follower.connected:
            try:
                state = await self.store.load()
            except Unavailable as error:
                self._skip_redis_until = now + self.redis_retry_seconds
                log.warning("redis unreachable, answering from the database", error=str(error))
            else:
                if state.counts() != (0, 0, 0) or state.last_ingest_at > 0:
                    READS.labels("redis").inc()
                    return View(state, status_pb2.SOURCE_REDIS, self.is_stale(state.last_ingest_at, now), now)
                # Redis answers but holds nothing and no ingest ever wrote to it: it restarted
                # empty and is not seeded yet. The database's configuration is the truer answer.
        return await self.database_view(now)

    async def database_view(self, now: float | None = None) -> View:
        when = self.clock() if now is None else now
        state = self._database_state
        if state is None or when - self._database_loaded_at >= self.database_cache_seconds:
            try:
                config = await self.database.load()
            except Exception as error:
                raise Unavailable(f"neither redis nor the database can answer: {error!r}") from error
            state = LiveState.from_messages(config.operators, config.queues)
            # The configuration changes only when a resync is written through: during an outage
            # every reader shares one load a second instead of each querying the database.
            self._database_state, self._database_loaded_at = state, when
        READS.labels("database").inc()
        return View(state, status_pb2.SOURCE_DATABASE, True, when)
