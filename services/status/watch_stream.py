"""One WatchSnapshot stream: a snapshot, then the change sets after it, and (asked for) freshness.

The stream reads its watcher's mailbox (:class:`services.status.watch.Watcher`): change sets in
revision order (those already in the snapshot are skipped), "skip ahead" (send a fresh
snapshot), "freshness moved" (an ingest heartbeat) and "end". A stream that asked for
freshness events gets one

- once it has caught up with the changes behind it (its mailbox is empty) and the freshness
  differs from the last one it carried (a snapshot carries one too);
- as a heartbeat: after ``heartbeat_seconds`` without any other message, and at least that
  often while changes keep its mailbox busy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

from switchboard.status.v1 import status_pb2

from services.status.domain import wire
from services.status.watch import END, FRESHNESS, SKIP_AHEAD, Watcher, WatchHub

FreshnessKey = tuple[int, bool, float]
"""What a freshness event says: (source, stale, last_ingest_at)."""

Snapshotter = Callable[[Collection[str] | None], Awaitable[tuple[int, bytes, FreshnessKey]]]
"""(revision, the serialized snapshot event, the freshness it carries) for a queue filter."""

FreshnessReader = Callable[[], Awaitable[status_pb2.ReadMeta]]


class _FreshnessEvents:
    def __init__(self, read: FreshnessReader, heartbeat_seconds: float) -> None:
        self.read = read
        self.heartbeat_seconds = heartbeat_seconds
        self.sent: FreshnessKey | None = None
        self.sent_at = 0.0

    def carried(self, key: FreshnessKey) -> None:
        self.sent, self.sent_at = key, time.monotonic()

    async def due(self, *, caught_up: bool) -> bytes | None:
        """The event to send now, if any."""
        overdue = time.monotonic() - self.sent_at >= self.heartbeat_seconds
        if not (caught_up or overdue):
            return None
        meta = await self.read()
        key = (meta.source, meta.stale, meta.last_ingest_at)
        if key == self.sent and not overdue:
            return None
        self.carried(key)
        return wire.length_delimited(wire.WATCH_FRESHNESS, meta.SerializeToString())


async def _next_item(watcher: Watcher, heartbeat_seconds: float) -> tuple[int, bytes] | None:
    """The mailbox's next item; ``None`` when a freshness stream waited a heartbeat for nothing."""
    if not watcher.freshness or not watcher.queue.empty():
        return await watcher.queue.get()
    try:
        async with asyncio.timeout(heartbeat_seconds):
            return await watcher.queue.get()
    except TimeoutError:
        return None


async def watch_stream(
    hub: WatchHub,
    snapshot: Snapshotter,
    read_freshness: FreshnessReader,
    queue_names: Collection[str] = (),
    *,
    freshness: bool,
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    """Serialized ``WatchSnapshotResponse`` messages until the hub closes or the caller stops."""
    watcher = hub.subscribe(queue_names, freshness=freshness)
    names = watcher.queue_names
    events = _FreshnessEvents(read_freshness, heartbeat_seconds)
    try:
        after, first, carried = await snapshot(names)
        events.carried(carried)
        yield first
        while True:
            item = await _next_item(watcher, heartbeat_seconds)
            if item is not None:
                revision, payload = item
                if revision == END:
                    return
                if revision == FRESHNESS:
                    watcher.freshness_pending = False
                elif revision == SKIP_AHEAD:
                    after, payload, carried = await snapshot(names)
                    events.carried(carried)
                    yield payload
                elif revision > after:
                    after = revision
                    yield payload
            if freshness and (event := await events.due(caught_up=watcher.queue.empty())) is not None:
                yield event
    finally:
        hub.unsubscribe(watcher)
