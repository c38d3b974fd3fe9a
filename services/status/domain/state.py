"""The status service's live state: the shared read model with rows kept as ``Snapshot`` entries.

A :class:`LiveState` is a :class:`runtime.status_model.ReadState` whose encoding
(:class:`SnapshotEntries`) keeps each row's serialized ``Snapshot`` entry (field framing
included), so a snapshot answer is a join of cached bytes plus the few parts that depend on the
time of the answer (queues with waiting callers, timestamp, stale). It is loaded from the Redis
hashes (the rows' bytes are reused as they are) and then kept current by the change sets of the
Redis stream; it adds what only the service tracks: ``touched_at`` (the live keys' TTL clock).
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from switchboard.status.v1 import status_pb2

from runtime.status_model import ReadState, RevisionGap, longest_wait, operator_key_queue
from runtime.status_model.rules import epoch_ms
from services.status.domain import wire

__all__ = ["LiveState", "RevisionGap", "SnapshotEntries"]


class _WaitingQueue:
    """A queue with callers: its Snapshot entry completed with ``longest_wait`` at answer time.

    The row's bytes are joined once: per answer only the wait fields and the entry's length
    prefix are encoded.
    """

    __slots__ = ("body", "earliest", "unknown_wait")

    def __init__(self, base: bytes, waiting: int, earliest: float) -> None:
        self.body = base + wire.queue_wait_fields(waiting, 0.0)
        self.earliest = earliest
        self.unknown_wait = wire.length_delimited(wire.SNAPSHOT_QUEUES, self.body)
        """The entry while the longest wait is 0 (not known, or not begun at the answer's time)."""

    def at(self, now: float) -> bytes:
        longest = longest_wait(self.earliest, now)
        return wire.queue_entry_at(self.body, longest) if longest else self.unknown_wait


class SnapshotEntries:
    """Rows encoded as ``Snapshot`` entries (the protobuf encoding of the read model)."""

    def operator(self, row: status_pb2.Operator, serialized: bytes | None) -> bytes:
        return wire.length_delimited(wire.SNAPSHOT_OPERATORS, serialized or row.SerializeToString())

    def channel(self, row: status_pb2.Channel, serialized: bytes | None) -> bytes:
        return wire.length_delimited(wire.SNAPSHOT_CHANNELS, serialized or row.SerializeToString())

    def queue(self, row: status_pb2.Queue, serialized: bytes | None) -> bytes:
        return wire.length_delimited(wire.SNAPSHOT_QUEUES, serialized or row.SerializeToString())

    def waiting_queue(self, row: status_pb2.Queue, waiting: int, earliest: float) -> _WaitingQueue:
        # The row without its two read-time fields, completed per answer by wire.queue_wait_fields.
        base = status_pb2.Queue()
        base.CopyFrom(row)
        base.waiting = 0
        base.longest_wait = 0.0
        base.longest_wait_ms = 0
        return _WaitingQueue(base.SerializeToString(), waiting, earliest)


_ENTRIES = SnapshotEntries()


class LiveState(ReadState):
    """In-memory copy of the live rows at one revision."""

    def __init__(self, *, revision: int = 0, last_ingest_at: float = 0.0, touched_at: float = 0.0) -> None:
        super().__init__(_ENTRIES, revision=revision, last_ingest_at=last_ingest_at)
        self.touched_at = touched_at
        self._body: bytes | None = None
        """Per revision: every operator and channel entry, and the revision."""

    @classmethod
    def from_rows(
        cls,
        operators: Mapping[bytes, bytes],
        queues: Mapping[bytes, bytes],
        channels: Mapping[bytes, bytes],
        *,
        revision: int,
        last_ingest_at: float,
        touched_at: float,
    ) -> LiveState:
        """Build from the raw hash contents (field → serialized row) at ``revision``."""
        state = cls(revision=revision, last_ingest_at=last_ingest_at, touched_at=touched_at)
        for raw in operators.values():
            state.put_operator(status_pb2.Operator.FromString(raw), raw)
        for raw in queues.values():
            state.put_queue(status_pb2.Queue.FromString(raw), raw)
        for raw in channels.values():
            state.put_channel(status_pb2.Channel.FromString(raw), raw)
        return state

    @classmethod
    def from_messages(
        cls,
        operators: Iterable[status_pb2.Operator],
        queues: Iterable[status_pb2.Queue],
        channels: Iterable[status_pb2.Channel] = (),
        *,
        revision: int = 0,
        last_ingest_at: float = 0.0,
    ) -> LiveState:
        """Build from row messages (the database fallback)."""
        state = cls(revision=revision, last_ingest_at=last_ingest_at)
        state.load(operators, queues, channels)
        return state

    def touch(self, last_ingest_at: float, touched_at: float) -> None:
        """Freshness carried by every stream entry (heartbeats included)."""
        self.last_ingest_at = max(self.last_ingest_at, last_ingest_at)
        self.touched_at = max(self.touched_at, touched_at)

    def changed(self) -> None:
        super().changed()
        self._body = None

    def snapshot_bytes(
        self,
        *,
        now: float,
        stale: bool,
        source: status_pb2.Source.ValueType = status_pb2.SOURCE_REDIS,
        queue_names: Collection[str] | None = None,
    ) -> bytes:
        """A serialized ``Snapshot`` at ``now``; ``queue_names`` limits operators and queues."""
        operators, channels = self.operator_rows, self.channel_rows
        if queue_names is None:
            if self._body is None:
                self._body = b"".join(
                    [
                        *(operators.encoded[key] for key in operators.order()),
                        *(channels.encoded[key] for key in channels.order()),
                        status_pb2.Snapshot(revision=self.revision).SerializeToString(),
                    ]
                )
            parts = [self._body, *self.queues_encoded(now)]
        else:
            wanted = set(queue_names)
            parts = [
                *(operators.encoded[key] for key in operators.order() if operator_key_queue(key) in wanted),
                *(channels.encoded[key] for key in channels.order()),
                status_pb2.Snapshot(revision=self.revision).SerializeToString(),
                *(
                    encoded
                    for name in self.queue_rows.order()
                    if name in wanted and (encoded := self.queue_encoded(name, now)) is not None
                ),
            ]
        tail = status_pb2.Snapshot(
            timestamp=now,
            source=source,
            stale=stale,
            last_ingest_at=self.last_ingest_at,
            timestamp_ms=epoch_ms(now),
            last_ingest_at_ms=epoch_ms(self.last_ingest_at),
        )
        parts.append(tail.SerializeToString())
        return b"".join(parts)

    def snapshot(
        self, *, now: float, stale: bool, source: status_pb2.Source.ValueType = status_pb2.SOURCE_REDIS
    ) -> status_pb2.Snapshot:
        """The snapshot as a message (for callers that need objects rather than bytes)."""
        return status_pb2.Snapshot.FromString(self.snapshot_bytes(now=now, stale=stale, source=source))
