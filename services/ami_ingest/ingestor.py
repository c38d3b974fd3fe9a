"""The ingest loop: AMI frames → typed events → state → ordered changes for the status service.

One task consumes every live event of an :class:`AmiConnection` in wire order. A resync runs on
every (re)connect (the client's ``on_connect`` hook) and on request:

1. a ``begin`` marker enters the inbox *before* ``QueueStatus`` is sent, so every live event
   from then on is held back instead of applied (holding back earlier than needed is harmless:
   held events are replayed in order on top of the lists);
2. ``QueueStatus`` and ``CoreShowChannels`` are answered; the client numbers list items and live
   events from one sequence, and every live event numbered below the end of the last list is
   already queued when its answer completes — the resync waits until those have been handed
   over, then puts its ``lists`` marker in the inbox;
3. the loop merges the held live events with the list items by sequence number and feeds them,
   in that order, to a :class:`ResyncSession`, which makes the state equal to the lists and
   re-applies the live events on top (see ``domain/resync.py`` for why that is correct);
4. the complete state is published as one ``replace_all`` batch: stale rows vanish atomically.

Between resyncs every event's changes go straight to the sink. Nothing awaits between applying
an event and handing its changes over, so the sink sees changes in event order. Live events
travel as the batches the client read them in (one queue hop per socket read, not per event).

The loop shares its event loop with the service's gRPC server (health checks, probes): a burst
must not hold it for long. A list is applied in slices of ``SLICE_EVENTS``, each slice's changes
handed over together, and the loop yields (``asyncio.sleep(0)``) once a turn has worked for
``TURN_BUDGET_S``. So that the socket reader does not run ahead meanwhile (parsing a burst
into memory instead of leaving it in the socket), it awaits :meth:`Ingestor.room` before each
read: at most ``MAX_BACKLOG`` live events wait in the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Protocol

from runtime.logging import get_logger
from services.ami_ingest.ami.batch import EventBatch
from services.ami_ingest.ami.client import AmiConnection
from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.transport import ActionResult
from services.ami_ingest.convert import state_changes
from services.ami_ingest.domain.model import StateChange
from services.ami_ingest.domain.normalize import EventNormalizer
from services.ami_ingest.domain.resync import ResyncSession
from services.ami_ingest.domain.state import CallCenterState
from services.ami_ingest.metrics import RESYNC_SECONDS, RESYNCS

log = get_logger("ami_ingest.ingestor")

SLICE_EVENTS = 128
"""Live events applied between two looks at the turn's budget (~0.5 ms of work at most)."""
TURN_BUDGET_S = 0.003
"""Work one turn of the loop may do before it lets other tasks (gRPC handlers) run."""
MAX_BACKLOG = 16384
"""Live events the inbox may hold before the socket reader waits (about 25 full reads, ~0.1 s of
work): enough that the sender refills the socket while they are applied. With ~3 reads the
replay rate fell by a quarter on a loaded machine (the sender was not rescheduled in time)."""


class ChangeSink(Protocol):
    def publish(self, changes: Sequence[StateChange], *, emitted_at: float | None = None) -> None: ...

    def publish_replace_all(self, changes: Sequence[StateChange], *, emitted_at: float | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class _Begin:
    resync_id: int


@dataclass(frozen=True, slots=True)
class _Lists:
    resync_id: int
    results: tuple[ActionResult, ...]
    done: asyncio.Future[None] = field(compare=False)


@dataclass(frozen=True, slots=True)
class _Abort:
    resync_id: int


_InboxItem = EventBatch | _Begin | _Lists | _Abort | None


class Ingestor:
    def __init__(
        self,
        sink: ChangeSink,
        *,
        clock: Callable[[], float] = time.time,
        resync_timeout: float = 30.0,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.resync_timeout = resync_timeout
        self.state = CallCenterState()
        self.normalizer = EventNormalizer()
        self.stats: Counter[str] = Counter()
        self.applied: Counter[type] = Counter()
        """Events applied, by event class (exported at scrape time: ``ami_events_total``)."""
        self.ready = False
        """True once a resync has produced a complete picture worth publishing."""
        self.last_event_at = 0.0
        self._inbox: asyncio.Queue[_InboxItem] = asyncio.Queue()
        self._held: list[tuple[int, Frame]] | None = None
        self._resync_ids = 0
        self._resync_lock = asyncio.Lock()
        self._parked: tuple[int, _Lists] | None = None
        self._backlog = 0
        """Live events put in the inbox and not yet applied (or held back)."""
        self._room = asyncio.Event()
        self._room.set()

    # -- snapshot for the publisher --------------------------------------------------------

    def full_state(self) -> list[StateChange] | None:
        """The whole state as upserts, or ``None`` before the first resync finished."""
        return list(state_changes(self.state)) if self.ready else None

    def reset(self) -> None:
        """Forget everything (leadership lost): the next leader term starts from a resync."""
        self.state = CallCenterState()
        self.ready = False
        self._held = None

    # -- feeding ---------------------------------------------------------------------------

    async def pump(self, connection: AmiConnection) -> None:
        """Move the connection's live events into the inbox, in order, until it ends."""
        inbox = self._inbox
        async for batch in connection.event_batches():
            if self._parked is not None and batch.last_seq > self._parked[0]:
                # Parked lists go in right after the last live event numbered below their end.
                last_seq, lists = self._parked
                before, batch = batch.split_after(last_seq)
                if before.frames:
                    self._put_events(before)
                inbox.put_nowait(lists)
                self._parked = None
            self._put_events(batch)
            if self._parked is not None and not connection.queued_events:
                inbox.put_nowait(self._parked[1])
                self._parked = None

    def _put_events(self, batch: EventBatch) -> None:
        self._backlog += len(batch)
        if self._backlog >= MAX_BACKLOG:
            self._room.clear()
        self._inbox.put_nowait(batch)

    async def room(self) -> None:
        """Return once the inbox has room for another socket read (the reader's gate)."""
        while self._backlog >= MAX_BACKLOG:
            await self._room.wait()

    def _taken(self, count: int) -> None:
        self._backlog -= count
        if self._backlog < MAX_BACKLOG:
            self._room.set()

    def _release_lists(self, lists: _Lists, last_seq: int, connection: AmiConnection) -> None:
        """Put the lists in the inbox after every live event numbered below ``last_seq``.

        When the last list completed, each earlier live event was already queued in the
        connection; with that queue empty they are all in the inbox, otherwise the pump
        releases the lists once it has forwarded them.
        """
        if connection.queued_events:
            self._parked = (last_seq, lists)
        else:
            self._inbox.put_nowait(lists)

    async def resync(self, connection: AmiConnection) -> None:
        """Rebuild the picture from Asterisk's lists (the client's ``on_connect`` hook)."""
        async with self._resync_lock:
            self._resync_ids += 1
            resync_id = self._resync_ids
            started = time.monotonic()
            self._inbox.put_nowait(_Begin(resync_id))
            try:
                async with asyncio.timeout(self.resync_timeout):
                    queues = (await connection.send_action("QueueStatus")).raise_for_error()
                    channels = (await connection.send_action("CoreShowChannels")).raise_for_error()
                    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    lists = _Lists(resync_id, (queues, channels), done)
                    self._release_lists(lists, max(queues.end_seq, channels.end_seq), connection)
                    await done
            except BaseException as exc:
                self._parked = None
                self._inbox.put_nowait(_Abort(resync_id))
                RESYNCS.labels(outcome="failed").inc()
                log.warning("resync failed", error=f"{type(exc).__name__}: {exc}")
                raise
            RESYNCS.labels(outcome="ok").inc()
            RESYNC_SECONDS.observe(time.monotonic() - started)
            log.info(
                "resync finished",
                operators=len(self.state.operators),
                queues=len(self.state.queues),
                channels=len(self.state.channels),
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )

    async def run(self) -> None:
        """Consume the inbox until :meth:`stop`, yielding whenever a turn used its budget."""
        inbox, clock = self._inbox, time.perf_counter
        turn_started = clock()
        while True:
            if inbox.empty():
                item = await inbox.get()
                turn_started = clock()
            else:
                item = inbox.get_nowait()
            if item is None:
                return
            if isinstance(item, EventBatch):
                count = len(item.frames)
                for start in range(0, count, SLICE_EVENTS):
                    stop = min(start + SLICE_EVENTS, count)
                    self._on_events(item, start, stop)
                    self._taken(stop - start)
                    if clock() - turn_started >= TURN_BUDGET_S:
                        await asyncio.sleep(0)
                        turn_started = clock()
            elif isinstance(item, _Begin):
                self._held = []
            elif isinstance(item, _Lists):
                self._finish_resync(item)
            else:
                self._abort_resync()

    def stop(self) -> None:
        self._inbox.put_nowait(None)

    @property
    def backlog(self) -> int:
        """Live events in the inbox (or being applied) that the loop has not applied yet."""
        return self._backlog

    @property
    def idle(self) -> bool:
        """Nothing waiting in the inbox or half applied, and no resync holding events back."""
        return not self._backlog and self._inbox.empty() and self._held is None and not self._resync_lock.locked()

    # -- the loop's steps ------------------------------------------------------------------

    def _on_events(self, batch: EventBatch, start: int, stop: int) -> None:
        """Apply (or hold back, during a resync) the events ``start:stop`` of ``batch``."""
        if start >= stop:
            return
        self.last_event_at = now = self.clock()
        frames = batch.frames if start == 0 and stop == len(batch.frames) else batch.frames[start:stop]
        if self._held is not None:
            self._held.extend(zip(batch.seqs[start:stop], frames, strict=True))
            return
        # Normalising the whole slice before applying it changes nothing (the normalizer keeps no
        # state but its counters); it lets the events be counted by class in C, not per event in
        # Python, and the frames go through the normalizer by a C-level map, no Python loop around it.
        found = list(chain.from_iterable(map(self.normalizer.events, frames)))
        self.applied.update(map(type, found))
        self.stats["events"] += len(found)
        changes: list[StateChange] = []
        extend = changes.extend
        apply = self.state.apply
        for event in found:
            extend(apply(event, now))
        if changes and self.ready:
            self.sink.publish(changes, emitted_at=now)

    def _apply(self, frame: Frame, now: float, session: ResyncSession | None) -> list[StateChange]:
        changes: list[StateChange] = []
        for event in self.normalizer.events(frame):
            self.stats["events"] += 1
            self.applied[type(event)] += 1
            changes.extend(session.feed(event, now) if session else self.state.apply(event, now))
        return changes

    def _finish_resync(self, lists: _Lists) -> None:
        held, self._held = self._held or [], None
        frames: list[tuple[int, Frame]] = held
        for result in lists.results:
            frames.extend(zip(result.item_seqs, result.items, strict=True))
            if result.complete is not None:
                frames.append((result.end_seq, result.complete))
        frames.sort(key=lambda pair: pair[0])
        queues, channels = lists.results
        session = ResyncSession(self.state, queues.action_id, channels.action_id)
        now = self.clock()
        for _, frame in frames:
            self._apply(frame, now, session)
        self.ready = True
        self.stats["resyncs"] += 1
        full = self.full_state()
        self.sink.publish_replace_all(full or [], emitted_at=now)
        if not lists.done.done():
            lists.done.set_result(None)

    def _abort_resync(self) -> None:
        """The lists never came: apply what was held so the state stays as fresh as it can."""
        held, self._held = self._held or [], None
        now = self.clock()
        for _, frame in held:
            changes = self._apply(frame, now, None)
            if changes and self.ready:
                self.sink.publish(changes, emitted_at=now)


async def cancel_quietly(task: asyncio.Task[object] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
