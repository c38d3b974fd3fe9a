"""Keeps this replica's in-memory :class:`LiveState` current from the Redis change stream.

Every status replica runs one follower: it loads the hashes (one MULTI/EXEC), then XREADs the
stream from that revision and applies each ChangeSet in order, publishing it to the local
watchers. A batch ingested through any replica therefore reaches the watchers of all of them.
The replica that ingested a batch does not wait for that round trip: :meth:`Follower.deliver`
applies the script's ChangeSet as soon as EVALSHA returns (when it is the next revision), and
the stream entry read later is skipped by its revision.
A revision gap (trimmed stream, Redis restarted empty, a Clear) means "reload and send every
watcher a fresh snapshot". While Redis is unreachable the follower retries with capped
backoff and reports itself cold, so reads go to Redis directly or to the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import Counter, Gauge
from switchboard.status.v1 import status_pb2

from runtime.background import BackgroundTask
from runtime.errors import Unavailable
from runtime.logging import get_logger
from runtime.retry import RetryPolicy
from runtime.supervision import TaskSupervisor
from runtime.telemetry import use_context
from services.status.domain.state import LiveState, RevisionGap
from services.status.redis_store import ApplyResult, RedisStore
from services.status.watch import WatchHub

log = get_logger("status.follower")

RELOADS = Counter("status_state_reloads_total", "Full reloads of the in-memory state from Redis")
APPLIED = Counter("status_changesets_applied_total", "Change sets applied to the in-memory state")
REVISION = Gauge("status_state_revision", "Revision of this replica's in-memory state")


class Follower:
    """Owner of the replica's in-memory state."""

    def __init__(
        self,
        store: RedisStore,
        hub: WatchHub,
        *,
        live_ttl_seconds: float,
        block_ms: int = 1000,
        coalesce_seconds: float = 0.005,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        tasks: TaskSupervisor | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.live_ttl_seconds = live_ttl_seconds
        self.block_ms = block_ms
        self.coalesce_seconds = coalesce_seconds
        """After a read that held only this replica's own, already delivered writes, wait this
        long before the next XREAD: a replica that ingests would otherwise wake once per write to
        learn nothing. Other replicas' changes arriving meanwhile wait at most this long."""
        self.retry = retry or RetryPolicy(attempts=0, base=0.05, cap=2.0, jitter=0.5)
        self.clock = clock
        self.state: LiveState | None = None
        self.connected = False
        self._last_id = b"0-0"
        self._task = BackgroundTask(self.run, "status-follower", tasks=tasks)
        self._ready = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.on_reconnect: Callable[[], Awaitable[object]] | None = None
        """Run after Redis came back from an outage, before reloading (seeds an empty Redis)."""

    def current(self, now: float) -> LiveState | None:
        """The in-memory state when it can answer reads: following, and the live keys not expired."""
        state = self.state
        if state is None or not self.connected:
            return None
        if state.touched_at and now - state.touched_at >= self.live_ttl_seconds:
            return None  # Redis has expired the rows by now; let a direct read say so.
        return state

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        self.connected = False

    async def wait_ready(self, wait_seconds: float) -> bool:
        """Wait until the first load succeeded (False on timeout)."""
        try:
            async with asyncio.timeout(wait_seconds):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    async def caught_up(self, revision: int, wait_seconds: float = 0.25) -> bool:
        """Wait until the in-memory state reached ``revision`` (read-your-writes on this replica).

        Bounded: a cold follower (Redis trouble) must not hold the caller; returns False then.
        """
        state = self.state
        if state is not None and self.connected and state.revision >= revision:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (revision, waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(wait_seconds):
                await waiter
        except TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)
        return True

    def _wake(self, revision: int | None) -> None:
        """Release waiters up to ``revision`` (``None``: all of them, the state was reloaded)."""
        if not self._waiters:
            return
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for wanted, waiter in self._waiters:
            if revision is None or wanted <= revision:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((wanted, waiter))
        self._waiters = keep

    async def run(self) -> None:
        failures = 0
        # The flag as well as the cancel: a cancel lost inside a Redis call (runtime.supervision)
        # would let the loop follow on into a store its replica is closing.
        while not self._task.stopping:
            try:
                if failures and self.on_reconnect is not None:
                    await self.on_reconnect()
                await self._reload()
                failures = 0
                await self._follow()
            except Unavailable as error:
                failures += 1
                if self.connected or failures == 1:
                    log.warning("redis stream lost", error=str(error))
                self.connected = False
                await self._task.pause(self.retry.delay_for(failures))
            except RevisionGap as gap:
                log.info("revision gap, reloading", have=gap.have, got=gap.got)
            except Exception as error:  # never let the follower die: it is the replica's state
                failures += 1
                log.exception("follower failed", error=repr(error))
                self.connected = False
                await self._task.pause(self.retry.delay_for(failures))

    async def _reload(self) -> None:
        state = await self.store.load()
        self.state = state
        self._last_id = f"{state.revision}-0".encode()
        self.connected = True
        RELOADS.inc()
        REVISION.set(state.revision)
        self.hub.reset()
        self._ready.set()
        self._wake(None)

    def deliver(self, result: ApplyResult) -> bool:
        """Apply a change set this replica just wrote, without waiting to read it back.

        The ingesting replica has the script's ChangeSet in hand when EVALSHA returns, so its
        own watchers see the change a stream round trip (and a follower wake-up) earlier. Only
        the exact next revision is applied: anything else (another replica wrote in between, a
        reload is under way) is left to the stream, which stays the single source of order.
        The same entry read from the stream later is skipped by its revision.
        """
        state = self.state
        if not result.changeset or state is None or not self.connected or result.revision != state.revision + 1:
            return False
        self._apply(state, status_pb2.ChangeSet.FromString(result.changeset), result.changeset)
        state.touch(result.last_ingest_at, result.touched_at)
        self._wake(state.revision)
        return True

    def _apply(self, state: LiveState, changes: status_pb2.ChangeSet, raw: bytes) -> None:
        state.apply(changes)
        APPLIED.inc()
        REVISION.set(state.revision)
        self.hub.publish(changes, raw)

    async def _follow(self) -> None:
        while not self._task.stopping:
            # The blocking XREAD is this replica's background loop, not part of any request:
            # tracing it would add an orphan span per wake-up (and per idle second).
            with suppress_instrumentation():
                entries = await self.store.read_stream(self._last_id, block_ms=self.block_ms)
            state = self.state
            assert state is not None
            news = False
            for entry in entries:
                self._last_id = entry.entry_id
                state.touch(entry.last_ingest_at, entry.touched_at)
                if not entry.raw_changes or entry.revision <= state.revision:
                    continue  # a heartbeat, or already delivered by this replica's ingest
                changes = entry.changes
                assert changes is not None
                with use_context({"traceparent": entry.traceparent} if entry.traceparent else None):
                    self._apply(state, changes, entry.raw_changes)
                news = True
            if entries:
                self._wake(state.revision)
                if not news:
                    self.hub.freshness_moved()  # an ingest heartbeat moved last_ingest_at
                    if self.coalesce_seconds > 0:
                        await self._task.pause(self.coalesce_seconds)
