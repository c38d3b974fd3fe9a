"""The live state held in memory: rows by key, revision, freshness, and fast snapshot bytes.

A :class:`LiveState` is loaded from the Redis hashes and then kept current by applying the
change sets of the Redis stream in revision order (:meth:`LiveState.apply` refuses a gap). It
keeps each row's serialized ``Snapshot`` entry next to the row, so a snapshot answer is a join
of cached bytes plus the few parts that depend on the time of the answer (queues with waiting
callers, timestamp, stale); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from switchboard.status.v1 import status_pb2

from services.status import keys
from services.status.domain import wire
from services.status.domain.views import has_read_time_fields, operator_key_queue, queue_view


class RevisionGap(Exception):
    """A change set does not follow the state's revision: reload from the hashes."""

    def __init__(self, have: int, got: int) -> None:
        super().__init__(f"change set revision {got} does not follow {have}")
        self.have = have
        self.got = got


RowT = TypeVar("RowT", status_pb2.Operator, status_pb2.Queue, status_pb2.Channel)


@dataclass
class _Rows(Generic[RowT]):
    """Rows of one entity kind with their serialized Snapshot entries and a lazily sorted key order."""

    snapshot_field: int
    messages: dict[str, RowT] = field(default_factory=dict)
    entries: dict[str, bytes] = field(default_factory=dict)
    _order: list[str] | None = None

    def put(self, key: str, message: RowT, serialized: bytes | None) -> None:
        """Store a row; ``serialized=None`` marks a row serialized per answer (time-dependent)."""
        if key not in self.messages:
            self._order = None
        self.messages[key] = message
        if serialized is None:
            self.entries.pop(key, None)
        else:
            self.entries[key] = wire.length_delimited(self.snapshot_field, serialized)

    def remove(self, key: str) -> None:
        if self.messages.pop(key, None) is not None:
            self.entries.pop(key, None)
            self._order = None

    def clear(self) -> None:
        self.messages.clear()
        self.entries.clear()
        self._order = None

    def order(self) -> list[str]:
        if self._order is None:
            self._order = sorted(self.messages)
        return self._order


class _WaitingQueue:
    """A queue with callers: its Snapshot entry completed with ``longest_wait`` at answer time.

    The entry's framing is computed once: only the 8 bytes of the double change per answer.
    """

    __slots__ = ("base", "earliest", "prefix", "waiting")

    def __init__(self, base: bytes, waiting: int, earliest: float) -> None:
        self.base = base
        self.waiting = waiting
        self.earliest = earliest
        body = base + wire.queue_wait_fields(waiting, 0.0)
        self.prefix = wire.field_header(wire.SNAPSHOT_QUEUES, len(body) + wire.LONGEST_WAIT_SIZE) + body

    def entry(self, now: float) -> bytes:
        longest = max(0.0, now - self.earliest) if self.earliest else 0.0
        if not longest:
            return wire.length_delimited(wire.SNAPSHOT_QUEUES, self.base + wire.queue_wait_fields(self.waiting, 0.0))
        return self.prefix + wire.longest_wait_field(longest)


class LiveState:
    """In-memory copy of the live rows at one revision."""

    def __init__(self) -> None:
        self.revision = 0
        self.last_ingest_at = 0.0
        self.touched_at = 0.0
        self._operators: _Rows[status_pb2.Operator] = _Rows(wire.SNAPSHOT_OPERATORS)
        self._queues: _Rows[status_pb2.Queue] = _Rows(wire.SNAPSHOT_QUEUES)
        self._channels: _Rows[status_pb2.Channel] = _Rows(wire.SNAPSHOT_CHANNELS)
        self._waits: dict[str, tuple[bytes, int, float]] = {}
        """Queues with callers: (row without read-time fields, callers, earliest waiting_since)."""
        self._body: bytes | None = None
        self._queue_parts: list[bytes | _WaitingQueue] | None = None
        """Per revision: each queue's Snapshot entry, or what completes it at answer time."""

    # -- loading and applying -------------------------------------------------------------

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
        state = cls()
        state.revision = revision
        state.last_ingest_at = last_ingest_at
        state.touched_at = touched_at
        for key, raw in operators.items():
            state._operators.put(key.decode(), status_pb2.Operator.FromString(raw), raw)
        for key, raw in queues.items():
            state._put_queue(key.decode(), status_pb2.Queue.FromString(raw))
        for key, raw in channels.items():
            state._channels.put(key.decode(), status_pb2.Channel.FromString(raw), raw)
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
        state = cls()
        state.revision = revision
        state.last_ingest_at = last_ingest_at
        for op in operators:
            state._operators.put(keys.operator_field(op.queue_name, op.member_id), op, op.SerializeToString())
        for queue in queues:
            state._put_queue(queue.name, queue)
        for channel in channels:
            state._channels.put(channel.unique_id, channel, channel.SerializeToString())
        return state

    def apply(self, changes: status_pb2.ChangeSet) -> None:
        """Apply the next change set; raises :class:`RevisionGap` unless it is revision + 1."""
        if changes.revision != self.revision + 1:
            raise RevisionGap(self.revision, changes.revision)
        if changes.replace_all:
            self._operators.clear()
            self._queues.clear()
            self._waits.clear()
            self._channels.clear()
        for change in changes.changes:
            kind = change.WhichOneof("change")
            if kind == "operator_upserted":
                op = change.operator_upserted
                self._operators.put(keys.operator_field(op.queue_name, op.member_id), op, op.SerializeToString())
            elif kind == "operator_removed":
                removed = change.operator_removed
                self._operators.remove(keys.operator_field(removed.queue_name, removed.member_id))
            elif kind == "queue_upserted":
                self._put_queue(change.queue_upserted.name, change.queue_upserted)
            elif kind == "queue_removed":
                self._queues.remove(change.queue_removed)
                self._waits.pop(change.queue_removed, None)
            elif kind == "channel_upserted":
                channel = change.channel_upserted
                self._channels.put(channel.unique_id, channel, channel.SerializeToString())
            elif kind == "channel_removed":
                self._channels.remove(change.channel_removed)
        self.revision = changes.revision
        self._body = None
        self._queue_parts = None

    def touch(self, last_ingest_at: float, touched_at: float) -> None:
        """Freshness carried by every stream entry (heartbeats included)."""
        self.last_ingest_at = max(self.last_ingest_at, last_ingest_at)
        self.touched_at = max(self.touched_at, touched_at)

    def _put_queue(self, name: str, queue: status_pb2.Queue) -> None:
        # Queues with waiting callers change with the clock (longest_wait): their entry is the
        # row without the two read-time fields, completed per answer by wire.queue_wait_fields.
        self._waits.pop(name, None)
        if not has_read_time_fields(queue):
            self._queues.put(name, queue, queue.SerializeToString())
            return
        base = status_pb2.Queue()
        base.CopyFrom(queue)
        base.waiting = 0
        base.longest_wait = 0.0
        starts = [caller.waiting_since for caller in queue.callers if caller.waiting_since > 0]
        self._waits[name] = (base.SerializeToString(), len(queue.callers), min(starts) if starts else 0.0)
        self._queues.put(name, queue, None)

    # -- reading --------------------------------------------------------------------------

    def operators(self) -> list[status_pb2.Operator]:
        """Every operator, ordered by queue then member."""
        rows = self._operators
        return [rows.messages[key] for key in rows.order()]

    def queues(self, now: float) -> list[status_pb2.Queue]:
        """Every queue as answered at ``now``, ordered by name."""
        rows = self._queues
        return [queue_view(rows.messages[key], now) for key in rows.order()]

    def queue(self, name: str, now: float) -> status_pb2.Queue | None:
        message = self._queues.messages.get(name)
        return None if message is None else queue_view(message, now)

    def channels(self) -> list[status_pb2.Channel]:
        """Every channel, ordered by uniqueid (Asterisk's uniqueids grow with time)."""
        rows = self._channels
        return [rows.messages[key] for key in rows.order()]

    def counts(self) -> tuple[int, int, int]:
        """Operators, queues, channels."""
        return len(self._operators.messages), len(self._queues.messages), len(self._channels.messages)

    def snapshot_bytes(
        self,
        *,
        now: float,
        stale: bool,
        source: status_pb2.Source.ValueType = status_pb2.SOURCE_REDIS,
        queue_names: Collection[str] | None = None,
    ) -> bytes:
        """A serialized ``Snapshot`` at ``now``; ``queue_names`` limits operators and queues."""
        if queue_names is None:
            if self._body is None:
                self._body = b"".join(
                    [
                        *(self._operators.entries[key] for key in self._operators.order()),
                        *(self._channels.entries[key] for key in self._channels.order()),
                        status_pb2.Snapshot(revision=self.revision).SerializeToString(),
                    ]
                )
            body = self._body
            queue_keys = self._queues.order()
        else:
            wanted = set(queue_names)
            body = b"".join(
                [
                    *(
                        self._operators.entries[key]
                        for key in self._operators.order()
                        if operator_key_queue(key) in wanted
                    ),
                    *(self._channels.entries[key] for key in self._channels.order()),
                    status_pb2.Snapshot(revision=self.revision).SerializeToString(),
                ]
            )
            queue_keys = [key for key in self._queues.order() if key in wanted]
        parts = [body]
        if queue_names is None:
            if self._queue_parts is None:
                self._queue_parts = [self._queue_part(key) for key in queue_keys]
            queue_parts = self._queue_parts
        else:
            queue_parts = [self._queue_part(key) for key in queue_keys]
        for part in queue_parts:
            parts.append(part if isinstance(part, bytes) else part.entry(now))
        tail = status_pb2.Snapshot(timestamp=now, source=source, stale=stale, last_ingest_at=self.last_ingest_at)
        parts.append(tail.SerializeToString())
        return b"".join(parts)

    def _queue_part(self, key: str) -> bytes | _WaitingQueue:
        entry = self._queues.entries.get(key)
        if entry is not None:
            return entry
        base, waiting, earliest = self._waits[key]
        return _WaitingQueue(base, waiting, earliest)

    def snapshot(
        self, *, now: float, stale: bool, source: status_pb2.Source.ValueType = status_pb2.SOURCE_REDIS
    ) -> status_pb2.Snapshot:
        """The snapshot as a message (for callers that need objects rather than bytes)."""
        return status_pb2.Snapshot.FromString(self.snapshot_bytes(now=now, stale=stale, source=source))
