"""A gateway-local mirror of the status service's live state, fed by ONE WatchSnapshot stream.

The status service stays the source of truth; the mirror only saves the gateway a gRPC call
(and the parsing of a 100 KiB Snapshot) per read. :meth:`StatusMirror.view` answers only
when the mirror is known to say what ``GetSnapshot`` would say; otherwise it returns ``None``
and the route makes the per-request gRPC call as before:

- **Rows.** The watch's first message (and any later ``snapshot`` message: the status service
  resends one after a skip-ahead or a reload) replaces the mirror; ``ChangeSet`` messages are
  applied in revision order. A gap, an error or the end of the stream drops the mirror at once
  (no answer comes from a dead watch) and the watch reconnects with capped, jittered backoff.
- **Freshness.** The watch carries no heartbeats: the ingest's idle heartbeats move
  ``last_ingest_at`` without any change set, and a Redis outage on the status side (answers
  from the database) shows up nowhere on the stream. So a cheap probe, ``ListQueues`` (a few
  rows plus the ``ReadMeta``), runs every ``probe_seconds`` and right after every applied
  change set (at most one at a time). The mirror answers only while the latest probe (or
  snapshot) said ``source=redis, stale=false`` and is younger than ``probe_max_age_seconds``.
- **Stale.** ``stale`` is decided per read with the status service's own rule
  (``last_ingest_at <= 0`` or older than ``STATUS_STALE_AFTER_SECONDS``, the same variable the
  status service reads). A stale state is never answered from the mirror: the status service
  says so itself (and knows when its rows expire), so mirror answers always carry
  ``stale=false, source=redis``. If the two thresholds were configured differently the flip
  is at most one probe late (the probe's ``stale``) or early (served by gRPC, still exact).
- **Lag.** Rows follow the watch (about a millisecond behind the status service);
  ``lastIngestAt`` follows the probe (within ``probe_gap_seconds`` plus a round trip after a
  change set, at most ``probe_seconds`` after an idle heartbeat). ``timestamp``, ``waiting`` and ``longestWait``
  are computed at read time from the gateway's clock, as the status service does from its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import grpc.aio
import orjson
from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import Counter, Gauge
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from gateway.mirror_state import MirrorGap, MirrorState
from runtime.logging import get_logger
from runtime.retry import RetryPolicy

__all__ = ["MirrorView", "StatusMirror"]

log = get_logger("gateway.status_mirror")

MIRROR_LIVE = Gauge("switchboard_gateway_status_mirror_live", "1 while the status mirror may answer reads.")
MIRROR_REVISION = Gauge("switchboard_gateway_status_mirror_revision", "Revision of the gateway's status mirror.")
MIRROR_RESTARTS = Counter("switchboard_gateway_status_mirror_restarts_total", "Status watches lost and restarted.")


@dataclass(frozen=True, slots=True)
class _Freshness:
    last_ingest_at: float
    usable: bool
    """The status service answered from Redis and not stale."""
    checked_at: float
    """Monotonic time the sample was asked for."""


@dataclass(frozen=True, slots=True)
class MirrorView:
    """One read's answer from the mirror: the rows, the time of the answer and its freshness."""

    state: MirrorState
    now: float
    last_ingest_at: float

    def _tail(self) -> bytes:
        return (
            b',"timestamp":' + orjson.dumps(self.now) + b',"source":"redis","stale":false'
            b',"revision":' + str(self.state.revision).encode() + b',"lastIngestAt":'
            + orjson.dumps(self.last_ingest_at) + b"}"
        )  # fmt: skip

    def snapshot_body(self) -> bytes:
        """The ``/snapshot`` response, byte for byte what the gRPC path renders (one copy of the rows)."""
        state = self.state
        head, middle = state.snapshot_frame()
        return b"".join((head, state.queues_json(self.now), middle, self._tail(), b"}"))

    def meta_json(self) -> bytes:
        return (
            b'{"source":"redis","stale":false,"timestamp":' + orjson.dumps(self.now)
            + b',"lastIngestAt":' + orjson.dumps(self.last_ingest_at) + b"}"
        )  # fmt: skip

    def list_body(self, rows: bytes, count: int) -> bytes:
        """``{"success": true, "data": [...], "count": n, "meta": {...}}``."""
        return (
            b'{"success":true,"data":' + rows + b',"count":' + str(count).encode()
            + b',"meta":' + self.meta_json() + b"}"
        )  # fmt: skip


class StatusMirror:
    def __init__(
        self,
        stub: Callable[[], status_pb2_grpc.StatusServiceStub],
        *,
        stale_after_seconds: float,
        probe_seconds: float = 0.5,
        probe_max_age_seconds: float = 2.0,
        probe_gap_seconds: float = 0.05,
        rpc_timeout_seconds: float = 2.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stub = stub
        self.stale_after_seconds = stale_after_seconds
        self.probe_seconds = probe_seconds
        self.probe_max_age_seconds = probe_max_age_seconds
        self.probe_gap_seconds = probe_gap_seconds
        """Pause after each probe: under a busy ingest at most one probe per gap (≤ 20/s, each ~0.3 ms
        of gateway CPU), so ``lastIngestAt`` trails a change set by at most this plus a round trip."""
        self.rpc_timeout_seconds = rpc_timeout_seconds
        self.retry = retry or RetryPolicy(attempts=0, base=0.05, cap=2.0, jitter=0.5)
        self.clock = clock
        self.state: MirrorState | None = None
        self._freshness: _Freshness | None = None
        self._probe_now = asyncio.Event()
        self._probed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._received_snapshot = False
        self._fenced_until = 0.0

    # -- reads ----------------------------------------------------------------------------

    def view(self) -> MirrorView | None:
        """The mirror's answer now, or None when the caller must ask the status service."""
        state, fresh = self.state, self._freshness
        if state is None or fresh is None or not fresh.usable:
            return None
        mono = time.monotonic()
        if mono - fresh.checked_at > self.probe_max_age_seconds or mono < self._fenced_until:
            return None
        now = self.clock()
        last = fresh.last_ingest_at
        if last <= 0 or now - last > self.stale_after_seconds:
            return None
        return MirrorView(state, now, last)

    def fence(self, seconds: float = 0.25) -> None:
        """A write went through the gateway (Clear, Resync): answer by gRPC until the watch has
        delivered something newer, or ``seconds`` passed (the write changed nothing), so the
        writer reads its own write."""
        self._fenced_until = time.monotonic() + seconds

    async def wait_fresh(self, revision: int, wait_seconds: float) -> bool:
        """Wait until the mirror answers at ``revision`` or later, by a freshness sample taken after
        this call began (tests, benchmarks); False on timeout."""
        started = time.monotonic()

        def ready() -> bool:
            state, fresh = self.state, self._freshness
            if state is None or fresh is None:
                return False
            return state.revision >= revision and fresh.checked_at >= started and self.view() is not None

        try:
            async with asyncio.timeout(wait_seconds), self._probed:
                self._probe_now.set()
                await self._probed.wait_for(ready)
        except TimeoutError:
            return False
        return True

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._watch_forever(), name="status-mirror-watch"),
                asyncio.create_task(self._probe_forever(), name="status-mirror-probe"),
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._drop()

    def _drop(self) -> None:
        self.state = None
        MIRROR_LIVE.set(0)

    # -- the watch ------------------------------------------------------------------------

    async def _watch_forever(self) -> None:
        failures = 0
        while True:
            self._received_snapshot = False
            try:
                await self._watch_once()
                reason = "stream ended"
            except (grpc.aio.AioRpcError, MirrorGap) as error:
                reason = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
            except Exception as error:  # never let the mirror's loop die: reads fall back meanwhile
                log.exception("status mirror failed", error=repr(error))
                reason = repr(error)
            self._drop()
            failures = 1 if self._received_snapshot else failures + 1
            MIRROR_RESTARTS.inc()
            if failures == 1:
                log.warning("status watch lost; reads go to the status service until it is back", reason=reason)
            await asyncio.sleep(self.retry.delay_for(failures))

    async def _watch_once(self) -> None:
        # A background stream, not part of any request: no span for it (nor per message).
        with suppress_instrumentation():
            call = self._stub().WatchSnapshot(status_pb2.WatchSnapshotRequest())
            try:
                while True:
                    message = await call.read()
                    if message is grpc.aio.EOF:
                        return
                    await self._on_message(message)
            finally:
                call.cancel()

    async def _on_message(self, message: status_pb2.WatchSnapshotResponse) -> None:
        if message.WhichOneof("event") == "snapshot":
            snapshot = message.snapshot
            self._received_snapshot = True
            asked_at = time.monotonic()
            self.state = MirrorState(snapshot)
            # The snapshot carries its own freshness: usable at once, without waiting for a probe.
            usable = snapshot.source == status_pb2.SOURCE_REDIS and not snapshot.stale
            await self._set_freshness(_Freshness(snapshot.last_ingest_at, usable, asked_at))
            if self._freshness is not None and self._freshness.usable:
                log.info("status mirror live", revision=snapshot.revision)
        else:
            state = self.state
            if state is None:
                raise MirrorGap("change set before the snapshot")
            state.apply(message.changes)
            self._probe_now.set()
        self._fenced_until = 0.0
        MIRROR_LIVE.set(1)
        MIRROR_REVISION.set(self.state.revision if self.state is not None else 0)

    # -- freshness ------------------------------------------------------------------------

    async def _set_freshness(self, freshness: _Freshness | None) -> None:
        async with self._probed:
            self._freshness = freshness
            self._probed.notify_all()

    async def _probe_forever(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.probe_seconds):
                    await self._probe_now.wait()
            except TimeoutError:
                pass
            self._probe_now.clear()
            if self.state is None:
                continue
            await self._probe()
            await asyncio.sleep(self.probe_gap_seconds)

    async def _probe(self) -> None:
        asked_at = time.monotonic()
        try:
            with suppress_instrumentation():
                reply = await self._stub().ListQueues(status_pb2.ListQueuesRequest(), timeout=self.rpc_timeout_seconds)
        except grpc.aio.AioRpcError as error:
            log.debug("status freshness probe failed", code=error.code().name)
            await self._set_freshness(None)
            return
        meta = reply.meta
        usable = meta.source == status_pb2.SOURCE_REDIS and not meta.stale
        await self._set_freshness(_Freshness(meta.last_ingest_at, usable, asked_at))
