"""A gateway-local mirror of the status service's live state, fed by ONE WatchSnapshot stream.

The status service stays the source of truth; the mirror only saves the gateway a gRPC call
(and the parsing of a 100 KiB Snapshot) per read. :meth:`StatusMirror.view` answers only
while the mirror is live and fresh, that is while it says what the status service would say;
otherwise it returns ``None`` and the read makes one gRPC call (:mod:`gateway.status_reads`):

- **Rows.** The watch's first message (and any later ``snapshot`` message: the status service
  resends one after a skip-ahead or a reload) replaces the mirror's
  :class:`~gateway.status_json_state.JsonReadState`; ``changes`` messages are applied in
  revision order. A gap, an error or the end of the stream drops the mirror at once (no answer
  comes from a dead watch) and the watch reconnects with capped, jittered backoff.
- **Freshness.** The watch asks for ``freshness`` events: the status service sends what a read
  would say (``source``, ``stale``, ``last_ingest_at``) whenever it moved, once the changes
  behind it are sent, and as a heartbeat when the stream has been quiet for
  ``STATUS_WATCH_HEARTBEAT_SECONDS``. The mirror answers only while the latest one (or the
  snapshot's own) said ``source=redis, stale=false`` and arrived less than
  ``freshness_max_age_seconds`` ago: a Redis outage on the status side (answers from the
  database) or a silent stream stops the mirror within that time.
- **Stale.** Between two events, ``stale`` is also decided per read by the read model's rule
  (:func:`runtime.status_model.is_stale` with ``STATUS_STALE_AFTER_SECONDS``, the variable the
  status service reads). A stale state is never answered from the mirror: the status service
  says so itself, so mirror answers always carry ``stale=false, source=redis``.
- **Lag.** Rows follow the watch (about a millisecond behind the status service);
  ``lastIngestAt`` follows the freshness events (right after a change set; at most a heartbeat
  after an idle ingest heartbeat). ``timestamp``, ``waiting`` and ``longestWait`` are computed
  at read time from the gateway's clock, as the status service does from its own.
- **Supervised.** The watch loop retries every error, but a ``CancelledError`` nobody asked for
  (grpc.aio raises one from ``read()`` once the call's channel is closed under it) ends it; with
  ``tasks`` that is a death: logged at ERROR, and the gateway's ``/healthz`` fails from then on
  (a mirror that never comes back, while every read pays a gRPC call, is restarted by Kubernetes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import grpc.aio
from prometheus_client import Counter, Gauge
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from gateway.status_json_state import JsonReadState
from runtime.background import BackgroundTask
from runtime.grpc_client import read_message
from runtime.logging import get_logger
from runtime.retry import RetryPolicy
from runtime.status_model import RevisionGap, is_stale
from runtime.supervision import TaskSupervisor

__all__ = ["MirrorView", "StatusMirror"]

log = get_logger("gateway.status_mirror")

MIRROR_LIVE = Gauge("switchboard_gateway_status_mirror_live", "1 while the status mirror may answer reads.")
MIRROR_REVISION = Gauge("switchboard_gateway_status_mirror_revision", "Revision of the gateway's status mirror.")
MIRROR_RESTARTS = Counter("switchboard_gateway_status_mirror_restarts_total", "Status watches lost and restarted.")


RECONNECT = RetryPolicy(attempts=0, base=0.05, cap=2.0, jitter=0.5)
"""A lost watch is retried forever, quickly at first: reads go by gRPC meanwhile."""


@dataclass(frozen=True, slots=True)
class _Freshness:
    last_ingest_at: float
    usable: bool
    """The status service would answer from Redis, not stale."""
    received_at: float
    """Monotonic time it arrived."""


@dataclass(frozen=True, slots=True)
class MirrorView:
    """One read's answer from the mirror: the rows, the time of the answer and its freshness."""

    state: JsonReadState
    now: float
    last_ingest_at: float


class StatusMirror:
    retry: RetryPolicy = RECONNECT
    clock: Callable[[], float] = time.time
    """The time of an answer (``timestamp``, ``longestWait``, stale)."""

    def __init__(
        self,
        stub: Callable[[], status_pb2_grpc.StatusServiceAsyncStub],
        *,
        stale_after_seconds: float,
        freshness_max_age_seconds: float = 2.0,
        tasks: TaskSupervisor | None = None,
    ) -> None:
        self._stub = stub
        self.stale_after_seconds = stale_after_seconds
        self.freshness_max_age_seconds = freshness_max_age_seconds
        self.state: JsonReadState | None = None
        self._freshness: _Freshness | None = None
        self._heard = asyncio.Condition()
        """Notified on every message of the watch."""
        self._task = BackgroundTask(self._watch_forever, "status-mirror-watch", tasks=tasks)
        self._received_snapshot = False
        self._ever_live = False
        self._fenced_until = 0.0

    # -- reads ----------------------------------------------------------------------------

    def view(self) -> MirrorView | None:
        """The mirror's answer now, or None when the caller must ask the status service."""
        state, fresh = self.state, self._freshness
        if state is None or fresh is None or not fresh.usable:
            return None
        mono = time.monotonic()
        if mono - fresh.received_at > self.freshness_max_age_seconds or mono < self._fenced_until:
            return None
        now = self.clock()
        if is_stale(fresh.last_ingest_at, now, self.stale_after_seconds):
            return None
        return MirrorView(state, now, fresh.last_ingest_at)

    def fence(self, seconds: float = 0.25) -> None:
        """A write went through the gateway (Clear, Resync): answer by gRPC until the watch has
        delivered rows again, or ``seconds`` passed (the write changed nothing), so the writer
        reads its own write."""
        self._fenced_until = time.monotonic() + seconds

    async def wait_fresh(self, revision: int, wait_seconds: float) -> bool:
        """Wait until the mirror answers at ``revision`` or later, by freshness heard after this
        call began (tests, benchmarks); False on timeout."""
        started = time.monotonic()

        def ready() -> bool:
            state, fresh = self.state, self._freshness
            if state is None or fresh is None:
                return False
            return state.revision >= revision and fresh.received_at >= started and self.view() is not None

        try:
            async with asyncio.timeout(wait_seconds), self._heard:
                await self._heard.wait_for(ready)
        except TimeoutError:
            return False
        return True

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        self._drop()

    def _drop(self) -> None:
        self.state = None
        self._freshness = None
        MIRROR_LIVE.set(0)

    # -- the watch ------------------------------------------------------------------------

    async def _watch_forever(self) -> None:
        failures = 0
        while not self._task.stopping:
            self._received_snapshot = False
            try:
                await self._watch_once()
                reason = "stream ended"
            except (grpc.aio.AioRpcError, RevisionGap) as error:
                reason = (error.details() or "") if isinstance(error, grpc.aio.AioRpcError) else str(error)
            except Exception as error:  # never let the mirror's loop die: reads fall back meanwhile
                log.exception("status mirror failed", error=repr(error))
                reason = repr(error)
            self._drop()
            failures = 1 if self._received_snapshot else failures + 1
            MIRROR_RESTARTS.inc()
            self._ever_live = self._ever_live or self._received_snapshot
            if failures == 1 and self._ever_live:
                log.warning("status watch lost; reads go to the status service until it is back", reason=reason)
            elif failures == 1:  # never had a watch yet: the status service is still starting
                log.info("waiting for the status service's watch; reads go to it meanwhile", reason=reason)
            await self._task.pause(self.retry.delay_for(failures))

    async def _watch_once(self) -> None:
        # A background stream, not part of any request. Its client span begins a trace that the
        # sampler drops (runtime.trace_export), and that "not sampled" travels to the status
        # service, so its span for this stream is not recorded either. (Suppressing the
        # instrumentation instead would send no context: the server would begin a trace of its own.)
        call = self._stub().WatchSnapshot(status_pb2.WatchSnapshotRequest(freshness=True))
        try:
            while (message := await read_message(call)) is not None:
                async with self._heard:
                    self._on_message(message)
                    self._heard.notify_all()
        finally:
            call.cancel()

    def _on_message(self, message: status_pb2.WatchSnapshotResponse) -> None:
        event = message.WhichOneof("event")
        received_at = time.monotonic()
        if event == "freshness":
            meta = message.freshness
            self._freshness = _Freshness(meta.last_ingest_at, _usable(meta.source, meta.stale), received_at)
            return
        if event == "snapshot":
            snapshot = message.snapshot
            self._received_snapshot = True
            self.state = JsonReadState(snapshot)
            # The snapshot carries its own freshness: usable at once, without waiting for an event.
            usable = _usable(snapshot.source, snapshot.stale)
            self._freshness = _Freshness(snapshot.last_ingest_at, usable, received_at)
            if usable:
                log.info("status mirror live", revision=snapshot.revision)
        elif event == "changes":
            if self.state is None:
                raise RevisionGap(0, message.changes.revision)
            self.state.apply(message.changes)
        else:
            return  # an event this gateway does not know yet
        self._fenced_until = 0.0
        MIRROR_LIVE.set(1)
        MIRROR_REVISION.set(self.state.revision)


def _usable(source: status_pb2.Source.ValueType, stale: bool) -> bool:
    return source == status_pb2.SOURCE_REDIS and not stale
