"""Ordered delivery of state changes into the status service's Ingest stream.

The ingest calls :meth:`StatusPublisher.publish` synchronously right after it applied an AMI
event to its state model; nothing awaits there, so event handling never waits on the network.
A single sender task drains the pending changes in order, coalescing whatever has piled up into
one :class:`IngestBatch` (at most ``max_changes`` changes), and keeps one bidirectional
``Ingest`` stream open to the status service.

Why a broken stream heals itself: when the stream breaks we cannot know which of the batches in
flight were applied. Instead of replaying them, the first batch of every new stream is
``replace_all`` with the ingest's complete current state (``snapshot()``), which the status
service applies atomically. Pending changes are dropped at that moment, because the snapshot
already contains them (it is taken on the same event-loop step, with no await in between).
Until the ingest has a state worth sending (its first resync), ``snapshot()`` returns ``None``
and nothing is sent, so an ingest restart never blanks the wall screens.

While the ingest is still adding changes (a burst, applied in slices with the event loop's other
tasks running in between), the sender waits one more loop turn at a time until a turn adds
nothing or a full batch is pending: a burst leaves in few large batches, not one per slice.

At most ``max_in_flight`` batches await their ack at a time: while the status service is behind,
the changes wait in the ingest and leave together once an ack makes room, so a load the service
cannot take batch by batch turns into fewer, larger batches instead of a growing queue (per
batch it pays a script call, a change set, an ack and a watch message, most of it gRPC's work
per message). Measured at 2,000 events/s on the 2-core machine (load ~3): AMI event →
WatchSnapshot p99 194 ms without the window, 15.5 ms with 4 batches in flight, 12.0 ms with 2
(p50 6.9, 6.6, 3.3 ms); at 500/s the window hardly ever fills.

Changes are queued as the ingest's own row changes and encoded only when a batch leaves
(``encode``), so a row that changed ten times while the stream was busy is encoded and sent
once.

When the stream is idle for ``heartbeat_interval`` an empty batch is sent: it refreshes the
live keys' TTL and tells readers the ingest is alive. An ack with ``fenced`` set (or, from a
status service without it, a FAILED_PRECONDITION answer) means the status service saw a newer
fencing token: this replica is no longer the leader and stops, writing nothing more on the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import trace
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from runtime.logging import get_logger
from runtime.retry import RetryPolicy
from runtime.status_model.rules import epoch_ms
from runtime.telemetry import inject_context

log = get_logger("ami_ingest.publisher")
tracer = trace.get_tracer("services.ami_ingest")

MAX_IN_FLIGHT = 2
"""Batches written on a stream and not acknowledged yet, at most (see ``_window_open``): with the
status service's ack ~1 ms behind its batch, two keep the stream busy at 2,000 events/s."""

ChangeT = TypeVar("ChangeT")
SnapshotProvider = Callable[[], Sequence[ChangeT] | None]
Encoder = Callable[[Sequence[ChangeT]], Sequence[status_pb2.StateChange]]


def _as_is(changes: Sequence[Any]) -> Sequence[status_pb2.StateChange]:
    return changes


@dataclass(slots=True)
class _Pending(Generic[ChangeT]):
    changes: list[ChangeT]
    replace_all: bool
    emitted_at: float


def _task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class StatusPublisher(Generic[ChangeT]):
    def __init__(
        self,
        stub: status_pb2_grpc.StatusServiceAsyncStub,
        *,
        source_id: str,
        snapshot: SnapshotProvider[ChangeT],
        encode: Encoder[ChangeT] = _as_is,
        retry: RetryPolicy | None = None,
        max_changes: int = 5000,
        max_in_flight: int = MAX_IN_FLIGHT,
        heartbeat_interval: float = 5.0,
    ) -> None:
        self._stub = stub
        self._source_id = source_id
        self._snapshot = snapshot
        self._encode = encode
        self._retry = retry or RetryPolicy(attempts=0, base=0.2, cap=5.0)
        self._max_changes = max_changes
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1 (got {max_in_flight})")
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        """Batches written on the current stream and not acknowledged yet."""
        self._acked = asyncio.Event()
        self._heartbeat_interval = heartbeat_interval
        self._pending: deque[_Pending[ChangeT]] = deque()
        self._pending_changes = 0
        """Changes in ``_pending``, kept as items come and go: the sender looks at it every loop
        turn of a burst, while hundreds of items may be queued."""
        self._pushes = 0
        self._wakeup = asyncio.Event()
        self._token = 0
        self._token_set = asyncio.Event()
        self._stopping = False
        self._call: grpc.aio.StreamStreamCall | None = None
        self._call_cancelled = False
        """The current call was cancelled by us (stop, deposed), not broken."""
        self._stream = 0
        """Counts the streams opened; a request iterator serves only the stream it was made for."""
        self._sequence = 0
        self.acked_sequence = 0
        self.acked_revision = 0
        self.batches_sent = 0
        self.fenced = False

    @property
    def idle(self) -> bool:
        """Nothing queued and every batch sent so far acknowledged."""
        return not self._pending and self.acked_sequence == self._sequence

    # -- called by the ingest ------------------------------------------------------------

    def set_fencing_token(self, token: int) -> None:
        """Start (or resume) publishing as leader with ``token``; 0 pauses publishing."""
        self._token = token
        self.fenced = False
        if token:
            self._token_set.set()
        else:
            self._token_set.clear()
            self._cancel_call()

    def publish(self, changes: Sequence[ChangeT], *, emitted_at: float | None = None) -> None:
        """Queue ordered changes; never blocks."""
        if changes:
            self._push(_Pending(list(changes), False, emitted_at or time.time()))

    def publish_replace_all(self, changes: Sequence[ChangeT], *, emitted_at: float | None = None) -> None:
        """Queue the complete truth (after a resync); everything queued before it is moot."""
        self._drop_pending()
        self._push(_Pending(list(changes), True, emitted_at or time.time()))

    def _push(self, item: _Pending[ChangeT]) -> None:
        self._pending.append(item)
        self._pending_changes += len(item.changes)
        self._pushes += 1
        self._wakeup.set()

    # -- the sender ----------------------------------------------------------------------

    async def run(self) -> None:
        """Keep an Ingest stream open and feed it until :meth:`stop`."""
        failures = 0
        while not self._stopping:
            await self._token_set.wait()
            if self._stopping:
                break
            self._stream += 1
            self._in_flight = 0
            self._restart_from_snapshot()
            self._call_cancelled = False
            try:
                self._call = self._stub.Ingest(self._requests(self._stream))
                async for ack in self._call:
                    if ack.fenced:
                        # The refusal in-band, before the FAILED_PRECONDITION that grpc.aio may
                        # read as INTERNAL if a write of ours races it (grpc/grpc#36066): stop now.
                        self._step_down()
                        break
                    self.acked_sequence, self.acked_revision = ack.sequence, ack.revision
                    self._in_flight -= 1
                    self._acked.set()
                    failures = 0
            except asyncio.CancelledError:
                # grpc.aio raises CancelledError when we cancel the call ourselves (stopped, or
                # deposed, perhaps already re-elected under a new token by the time this runs);
                # only a cancellation of this task itself must propagate.
                if _task_cancelling() or not self._call_cancelled:
                    raise
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.CANCELLED and self._call_cancelled:
                    continue
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    self._step_down()  # a status service without the in-band refusal
                    continue
                failures += 1
                delay = self._retry.delay_for(failures)
                if self.acked_sequence == 0 and exc.code() == grpc.StatusCode.UNAVAILABLE:
                    # Never connected yet: the status service is still starting (start-up order).
                    log.info("waiting for the status service", source=self._source_id, retry_in_s=round(delay, 2))
                else:
                    log.warning(
                        "ingest stream broken", source=self._source_id, code=exc.code().name, retry_in_s=round(delay, 2)
                    )
                await asyncio.sleep(delay)
            finally:
                self._call = None
                # Lets a request iterator still parked on the wakeup (or on an ack) see that its
                # stream is over.
                self._wakeup.set()
                self._acked.set()

    async def stop(self) -> None:
        self._stopping = True
        self._token_set.set()
        self._wakeup.set()
        self._acked.set()
        self._cancel_call()

    def _step_down(self) -> None:
        """Status refused this token: another ingest leads the source. No more writes on it."""
        log.warning("ingest refused: fenced by a newer leader", source=self._source_id)
        self.set_fencing_token(0)  # cancels the call: nothing more is written on it
        self.fenced = True

    def _cancel_call(self) -> None:
        if self._call is not None:
            self._call_cancelled = True
            self._call.cancel()

    def _drop_pending(self) -> None:
        self._pending.clear()
        self._pending_changes = 0

    def _restart_from_snapshot(self) -> None:
        self._drop_pending()
        state = self._snapshot()
        if state is not None:
            self._push(_Pending(list(state), True, time.time()))

    async def _requests(self, stream: int) -> AsyncIterator[status_pb2.IngestBatch]:
        """The batches of stream number ``stream``; ends as soon as a newer stream opened.

        grpc.aio keeps pulling a call's request iterator in a task of its own, which is not
        cancelled when the server breaks the call: without the stream check, the iterator of a
        dead call could take the new stream's ``replace_all`` off the queue and lose it.
        """
        while self._serves(stream):
            if not self._pending:
                self._wakeup.clear()
                # asyncio.timeout, not wait_for: no extra task between publish() and this batch.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._heartbeat_interval):
                        await self._wakeup.wait()
                if not self._serves(stream):
                    return
            await self._window_open(stream)
            await self._while_growing()
            if not self._serves(stream):
                return
            self._in_flight += 1
            yield self._next_batch()

    async def _window_open(self, stream: int) -> None:
        """Return once fewer than ``max_in_flight`` batches of this stream await their ack.

        While the status service is behind, the changes wait here and leave together in one
        batch when an ack makes room: the service's work per batch (script call, change set,
        ack, watch message) is then paid for many changes, not once per change, so it catches
        up instead of queueing more and more batches behind one another."""
        while self._in_flight >= self._max_in_flight and self._serves(stream):
            self._acked.clear()
            await self._acked.wait()

    async def _while_growing(self) -> None:
        """Return once a loop turn added no changes or a full batch is pending."""
        while self._pending_changes < self._max_changes:
            pushes = self._pushes
            await asyncio.sleep(0)
            if self._pushes == pushes:
                return

    def _serves(self, stream: int) -> bool:
        return not self._stopping and bool(self._token) and stream == self._stream and self._call is not None

    def _next_batch(self) -> status_pb2.IngestBatch:
        self._sequence += 1
        batch = status_pb2.IngestBatch(
            source_id=self._source_id, fencing_token=self._token, sequence=self._sequence, emitted_at=time.time()
        )
        raw: list[ChangeT] = []
        while self._pending:
            head = self._pending[0]
            if raw and (head.replace_all or len(raw) + len(head.changes) > self._max_changes):
                break
            self._pending.popleft()
            self._pending_changes -= len(head.changes)
            raw.extend(head.changes)
            batch.replace_all = batch.replace_all or head.replace_all
            batch.emitted_at = head.emitted_at
        batch.emitted_at_ms = epoch_ms(batch.emitted_at)
        batch.changes.extend(self._encode(raw))
        if batch.changes or batch.replace_all:
            self._trace(batch)
        self.batches_sent += 1
        return batch

    @staticmethod
    def _trace(batch: status_pb2.IngestBatch) -> None:
        """One trace per batch of changes (heartbeats get none): its span begins a new trace, not
        one under the long-lived stream, and its context rides in the batch so the status
        service's apply and watch fan-out continue it."""
        span = tracer.start_span(
            "ingest.batch",
            context=otel_context.Context(),
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "ingest.source_id": batch.source_id,
                "ingest.sequence": batch.sequence,
                "ingest.changes": len(batch.changes),
                "ingest.replace_all": batch.replace_all,
            },
        )
        with trace.use_span(span, end_on_exit=True):
            batch.trace_context.update(inject_context())
