"""The status service's core: its use cases, wired from its adapters; the gRPC servicer only translates.

Public (in-process) API, also what tests and benchmarks drive:

- ``ingest(batch)``: validate, apply atomically in Redis (one EVALSHA), queue a replace_all's
  static configuration for the database, return the revision.
- ``ingest_stream(batches)``: one Ingest stream, read ahead and applied in groups
  (:mod:`services.status.ingest_stream`), yielding the acks in order.
- ``reader.view()``: rows + freshness for every read RPC (memory → Redis → database).
- ``watch(queue_names, freshness=...)``: async iterator of serialized ``WatchSnapshotResponse``
  messages: a snapshot, the change sets after it, and (when asked) freshness events.
- ``sync_status()``, ``resync()``, ``clear()``, ``seed_if_empty()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence

from opentelemetry import trace
from switchboard.status.v1 import status_pb2

from runtime.errors import Unavailable
from runtime.logging import get_logger
from runtime.status_model.rules import epoch_ms
from runtime.supervision import TaskSupervisor
from services.status import ingest_tracing
from services.status.db import ConfigWriter, StatusDatabase
from services.status.domain import validation, wire
from services.status.domain.batch import upserts_for_config
from services.status.follower import Follower
from services.status.ingest_stream import DEFAULT_READ_AHEAD_BYTES, acknowledge
from services.status.reads import StatusReader
from services.status.redis_store import ApplyResult, PartiallyApplied, RedisStore
from services.status.watch import WatchHub
from services.status.watch_stream import FreshnessKey, watch_stream

log = get_logger("status.core")

ResyncRequester = Callable[[], Awaitable[bool]]


class StatusCore:
    """The status service's use cases (named apart from the gRPC ``StatusService`` it backs)."""

    def __init__(
        self,
        store: RedisStore,
        database: StatusDatabase,
        follower: Follower,
        hub: WatchHub,
        reader: StatusReader,
        *,
        request_resync: ResyncRequester,
        watch_heartbeat_seconds: float = 0.5,
        ingest_read_ahead_bytes: int = DEFAULT_READ_AHEAD_BYTES,
        tasks: TaskSupervisor | None = None,
    ) -> None:
        self.store = store
        self.database = database
        self.follower = follower
        self.hub = hub
        self.reader = reader
        self.tasks = tasks or TaskSupervisor()
        """The follower's and the config writer's loops (the follower's given to it by its maker)."""
        self.config_writer = ConfigWriter(database, tasks=self.tasks)
        self.request_resync = request_resync
        self.watch_heartbeat_seconds = watch_heartbeat_seconds
        """A watch that asked for freshness gets it after this long without any other message."""
        self.ingest_read_ahead_bytes = ingest_read_ahead_bytes
        follower.on_reconnect = self._seed_after_outage

    async def start(self, *, ready_timeout: float = 2.0) -> None:
        """Seed an empty Redis from the database, start following the stream."""
        try:
            await self.seed_if_empty()
        except Unavailable as error:
            log.warning("redis unreachable at start; serving from the database", error=str(error))
        except Exception as error:
            log.warning("seeding from the database failed", error=repr(error))
        self.follower.start()
        await self.follower.wait_ready(ready_timeout)

    async def _seed_after_outage(self) -> None:
        # A Redis restarted empty gets the database's configuration back at once; the ingest's
        # own reconnect brings the live truth shortly after.
        try:
            await self.seed_if_empty()
        except Unavailable:
            raise
        except Exception as error:
            log.warning("seeding from the database failed", error=repr(error))

    async def stop(self) -> None:
        self.tasks.close()
        self.hub.close()
        await self.follower.stop()
        await self.config_writer.stop()

    # -- writes ---------------------------------------------------------------------------

    async def ingest(self, batch: status_pb2.IngestBatch) -> ApplyResult:
        validation.check_batch(batch)
        # No wait for the local follower here: the ingest's throughput would pay a stream round
        # trip per batch. Admin operations below do wait (read-your-writes for their callers).
        result = await self.store.apply_batch(batch)
        self.follower.deliver(result)
        self._write_through(batch)
        return result

    async def ingest_group(self, batches: Sequence[status_pb2.IngestBatch]) -> list[ApplyResult]:
        """Already validated batches of one stream, in order, in one Redis round trip.

        Raises ``PartiallyApplied`` when a batch was fenced off after earlier ones were applied.
        """
        spans = ingest_tracing.start(batches)
        try:
            with ingest_tracing.current(spans[0]):
                results = await self.store.apply_batches(batches, ingest_tracing.traceparents(spans))
        except PartiallyApplied as partial:
            self._deliver(partial.applied, spans)
            for batch in batches[: len(partial.applied)]:
                self._write_through(batch)
            ingest_tracing.end(spans, revisions=[r.revision for r in partial.applied], error=partial.error)
            raise
        except BaseException as error:
            ingest_tracing.end(spans, error=error)
            raise
        self._deliver(results, spans)
        for batch in batches:
            self._write_through(batch)
        ingest_tracing.end(spans, revisions=[r.revision for r in results])
        return results

    def ingest_stream(self, batches: AsyncIterator[status_pb2.IngestBatch]) -> AsyncIterator[status_pb2.IngestAck]:
        """One Ingest stream: the ack of every batch, in order (see :mod:`services.status.ingest_stream`)."""
        return acknowledge(batches, self.ingest_group, max_read_ahead_bytes=self.ingest_read_ahead_bytes)

    def _deliver(self, results: Sequence[ApplyResult], spans: Sequence[trace.Span | None]) -> None:
        # This replica's watchers get its own writes straight away (see Follower.deliver);
        # the other replicas, and this one whenever the revision does not follow, read the stream.
        for result, span in zip(results, spans, strict=False):
            with ingest_tracing.current(span):
                self.follower.deliver(result)

    def _write_through(self, batch: status_pb2.IngestBatch) -> None:
        if batch.replace_all:
            queues = [c.queue_upserted for c in batch.changes if c.HasField("queue_upserted")]
            operators = [c.operator_upserted for c in batch.changes if c.HasField("operator_upserted")]
            self.config_writer.submit(batch.source_id, queues, operators)

    async def seed_if_empty(self) -> ApplyResult:
        """Load the database's configuration into Redis when Redis holds no live rows at all.

        One script call per source (each row keeps its source as owner in Redis); the first
        decides whether Redis was empty, the others then only add rows.
        """
        result = ApplyResult(revision=0, changes_applied=0)
        seeded = 0
        for index, (source_id, config) in enumerate(sorted((await self.database.load_by_source()).items())):
            result = await self.store.apply(
                upserts_for_config(config.queues, config.operators),
                source_id="",
                fencing_token=0,
                mode="nx-if-empty" if index == 0 else "nx",
                touch_ingest=False,
                owner=source_id,
            )
            if index == 0 and not result.changes_applied:
                break
            seeded += result.changes_applied
        if seeded:
            log.info("seeded redis from the database", rows=seeded)
        return result

    async def resync(self) -> status_pb2.ResyncResponse:
        """Add the database's rows missing from Redis, then ask the ingest for Asterisk's truth.

        Rows already live are kept (they are fresher than the database); the ingest's resync
        that follows is a replace_all and removes whatever Asterisk no longer has.
        """
        queues = operators = revision = 0
        for source_id, config in (await self.database.load_by_source()).items():
            result = await self.store.apply(
                upserts_for_config(config.queues, config.operators),
                source_id="",
                fencing_token=0,
                mode="nx",
                touch_ingest=False,
                owner=source_id,
            )
            queues += result.queues
            operators += result.operators
            revision = max(revision, result.revision)
        await self.follower.caught_up(revision)
        requested = await self.request_resync()
        return status_pb2.ResyncResponse(
            queues_seeded=queues,
            operators_seeded=operators,
            asterisk_resync_requested=requested,
        )

    async def clear(self) -> int:
        removed, revision = await self.store.clear()
        await self.follower.caught_up(revision)
        return removed

    # -- reads ----------------------------------------------------------------------------

    async def sync_status(self) -> status_pb2.SyncStatus:
        reply = status_pb2.SyncStatus()
        try:
            reply.db_members, reply.db_queues = await self.database.counts()
        except Exception as error:
            log.warning("database unreachable for sync status", error=repr(error))
        try:
            reply.redis_operators, reply.redis_queues, reply.redis_channels = await self.store.counts()
            reply.redis_available = True
        except Unavailable:
            reply.redis_available = False
        view = await self.reader.view()
        reply.last_ingest_at = view.state.last_ingest_at
        reply.last_ingest_at_ms = epoch_ms(view.state.last_ingest_at)
        reply.stale = view.stale
        return reply

    def watch(self, queue_names: Collection[str] = (), *, freshness: bool = False) -> AsyncIterator[bytes]:
        """A snapshot, then every change set after it in revision order (serialized responses),
        and with ``freshness`` also freshness events (see :mod:`services.status.watch_stream`)."""
        return watch_stream(
            self.hub,
            self._snapshot_for_watch,
            self.reader.freshness,
            queue_names,
            freshness=freshness,
            heartbeat_seconds=self.watch_heartbeat_seconds,
        )

    async def _snapshot_for_watch(self, queue_names: Collection[str] | None) -> tuple[int, bytes, FreshnessKey]:
        view = self.reader.live_view() or await self.reader.view()
        body = view.state.snapshot_bytes(now=view.now, stale=view.stale, source=view.source, queue_names=queue_names)
        freshness = (view.source, view.stale, view.state.last_ingest_at)
        return view.state.revision, wire.length_delimited(wire.WATCH_SNAPSHOT, body), freshness
