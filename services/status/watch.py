"""Fan-out of change sets to WatchSnapshot streams, where a slow watcher never stalls the others.

Each watcher owns a bounded queue. Publishing never waits: when a watcher's queue is full, its
backlog is dropped and replaced by a single "skip ahead" marker, so it next receives a fresh
snapshot and continues from there (the contract's "sent again after the stream had to skip
ahead"). The follower publishes synchronously right after applying a change set to the
in-memory state, so "subscribe, then take a snapshot" without an ``await`` between them can
neither miss nor duplicate a revision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final

from opentelemetry import trace
from prometheus_client import Counter, Gauge
from switchboard.status.v1 import status_pb2

from runtime.status_model.rules import filter_changeset
from services.status.domain import wire

SKIP_AHEAD: Final = -1
"""Queue item revision meaning "send a fresh snapshot"."""
END: Final = -2
"""Queue item revision meaning "the server is stopping: end the stream"."""
FRESHNESS: Final = -3
"""Queue item revision meaning "the freshness moved without a change set" (an ingest heartbeat)."""

tracer = trace.get_tracer("services.status")
WATCHERS = Gauge("status_watchers", "Open WatchSnapshot streams on this replica")
WATCH_SKIPS = Counter(
    "status_watch_skip_ahead_total", "Watchers that overflowed (or were reset) and were sent a fresh snapshot"
)


@dataclass(eq=False)
class Watcher:
    """One WatchSnapshot stream's mailbox: ``(revision, serialized WatchSnapshotResponse)`` items."""

    queue_names: frozenset[str] | None
    maxsize: int
    freshness: bool = False
    """The stream also carries freshness events (WatchSnapshotRequest.freshness)."""
    queue: asyncio.Queue[tuple[int, bytes]] = field(init=False)
    skips: int = 0
    freshness_pending: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.maxsize)

    def offer(self, revision: int, payload: bytes) -> None:
        try:
            self.queue.put_nowait((revision, payload))
        except asyncio.QueueFull:
            self.skip_ahead()

    def skip_ahead(self) -> None:
        """Drop the backlog; the stream continues with a fresh snapshot."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait((SKIP_AHEAD, b""))
        self.freshness_pending = False  # the fresh snapshot carries the freshness
        self.skips += 1
        WATCH_SKIPS.inc()

    def freshness_moved(self) -> None:
        """Wake the stream to send its freshness (one marker at most is pending)."""
        if self.freshness and not self.freshness_pending:
            self.freshness_pending = True
            self.offer(FRESHNESS, b"")

    def end(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait((END, b""))


class WatchHub:
    """The watchers of one replica."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.watchers: set[Watcher] = set()
        self.closed = False

    def subscribe(self, queue_names: Collection[str] = (), *, freshness: bool = False) -> Watcher:
        watcher = Watcher(frozenset(queue_names) or None, self.queue_size, freshness)
        if self.closed:
            watcher.end()
        self.watchers.add(watcher)
        WATCHERS.set(len(self.watchers))
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        WATCHERS.set(len(self.watchers))

    def publish(self, changes: status_pb2.ChangeSet, raw: bytes) -> None:
        """Offer one change set (``raw`` = its serialization) to every watcher.

        Inside a sampled trace (a batch's apply span, or the traceparent its stream entry
        carries) the fan-out gets its own span; an untraced change set is fanned out untraced."""
        if not self.watchers:
            return
        if not trace.get_current_span().get_span_context().trace_flags.sampled:
            self._offer(changes, raw)
            return
        with tracer.start_as_current_span(
            "status.watch.fanout",
            attributes={"status.revision": changes.revision, "status.watchers": len(self.watchers)},
        ):
            self._offer(changes, raw)

    def _offer(self, changes: status_pb2.ChangeSet, raw: bytes) -> None:
        revision = changes.revision
        everything = wire.length_delimited(wire.WATCH_CHANGES, raw)
        filtered: dict[frozenset[str], bytes | None] = {}
        for watcher in self.watchers:
            names = watcher.queue_names
            if names is None:
                watcher.offer(revision, everything)
                continue
            if names not in filtered:
                part = filter_changeset(changes, names)
                filtered[names] = (
                    None if part is None else wire.length_delimited(wire.WATCH_CHANGES, part.SerializeToString())
                )
            payload = filtered[names]
            if payload is not None:
                watcher.offer(revision, payload)

    def freshness_moved(self) -> None:
        """The state's freshness moved without a change set (an ingest heartbeat)."""
        for watcher in self.watchers:
            watcher.freshness_moved()

    def reset(self) -> None:
        """The state was reloaded (gap, reconnect, restart): every watcher starts over from a snapshot."""
        for watcher in self.watchers:
            watcher.skip_ahead()

    def close(self) -> None:
        """End every stream (shutdown)."""
        self.closed = True
        for watcher in self.watchers:
            watcher.end()
