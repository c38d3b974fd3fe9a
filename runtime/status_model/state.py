"""The live rows of one revision, each encoded once, advanced by ``ChangeSet`` messages in order.

:class:`ReadState` holds operators (keyed by :func:`~runtime.status_model.rules.operator_key`),
queues (by name) and channels (by uniqueid), each as the message and as its encoding. The
encoding is pluggable (:class:`RowEncoding`): the status service keeps protobuf ``Snapshot``
entries, the gateway JSON objects; either way a row is encoded once, when it arrives, and an
answer joins encoded rows. Queues with waiting callers are the exception: their ``waiting`` and
``longest_wait`` depend on the time of the answer, so their encoding is an
:class:`AtAnswerTime` completed per answer. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from switchboard.status.v1 import status_pb2

from runtime.status_model.rules import earliest_waiting_since, has_read_time_fields, operator_key, queue_view

__all__ = ["AtAnswerTime", "ReadState", "RevisionGap", "RowEncoding", "Rows"]


class RevisionGap(Exception):
    """A change set does not follow the state's revision: the holder must reload."""

    def __init__(self, have: int, got: int) -> None:
        super().__init__(f"change set revision {got} does not follow {have}")
        self.have = have
        self.got = got


class AtAnswerTime(Protocol):
    """An encoded row completed at the time of the answer (a queue with waiting callers)."""

    def at(self, now: float) -> bytes: ...


class RowEncoding(Protocol):
    """How a holder encodes rows. ``serialized`` is the row's protobuf encoding when the caller
    has it at hand (rows read from Redis), so a protobuf encoding need not serialize again."""

    def operator(self, row: status_pb2.Operator, serialized: bytes | None) -> bytes: ...

    def channel(self, row: status_pb2.Channel, serialized: bytes | None) -> bytes: ...

    def queue(self, row: status_pb2.Queue, serialized: bytes | None) -> bytes:
        """A queue without read-time fields: its answer does not depend on the time."""
        ...

    def waiting_queue(self, row: status_pb2.Queue, waiting: int, earliest: float) -> AtAnswerTime:
        """A queue with ``waiting`` callers, the earliest waiting since ``earliest`` (0: unknown)."""
        ...


RowT = TypeVar("RowT", status_pb2.Operator, status_pb2.Queue, status_pb2.Channel)
EncodedT = TypeVar("EncodedT")


@dataclass
class Rows(Generic[RowT, EncodedT]):
    """Rows of one entity kind: messages and encodings by key, and the lazily sorted key order."""

    messages: dict[str, RowT] = field(default_factory=dict)
    encoded: dict[str, EncodedT] = field(default_factory=dict)
    _order: list[str] | None = None

    def put(self, key: str, message: RowT, encoded: EncodedT) -> None:
        if key not in self.messages:
            self._order = None
        self.messages[key] = message
        self.encoded[key] = encoded

    def remove(self, key: str) -> None:
        if self.messages.pop(key, None) is not None:
            del self.encoded[key]
            self._order = None

    def clear(self) -> None:
        self.messages.clear()
        self.encoded.clear()
        self._order = None

    def order(self) -> list[str]:
        """Keys in order: operators by queue then member, queues by name, channels by uniqueid."""
        if self._order is None:
            self._order = sorted(self.messages)
        return self._order

    def ordered(self) -> list[RowT]:
        messages = self.messages
        return [messages[key] for key in self.order()]


class ReadState:
    """The rows at one revision, as the status service holds them, in one encoding.

    Holders that cache answers per revision override :meth:`changed` (called after every
    applied change set) to drop them.
    """

    def __init__(self, encoding: RowEncoding, *, revision: int = 0, last_ingest_at: float = 0.0) -> None:
        self.encoding = encoding
        self.revision = revision
        self.last_ingest_at = last_ingest_at
        self.operator_rows: Rows[status_pb2.Operator, bytes] = Rows()
        self.queue_rows: Rows[status_pb2.Queue, bytes | AtAnswerTime] = Rows()
        self.channel_rows: Rows[status_pb2.Channel, bytes] = Rows()
        self._queue_parts: list[bytes | AtAnswerTime] | None = None
        """Per revision: every queue's encoding in order."""

    # -- loading and applying -------------------------------------------------------------

    def put_operator(self, row: status_pb2.Operator, serialized: bytes | None = None) -> None:
        self.operator_rows.put(
            operator_key(row.queue_name, row.member_id), row, self.encoding.operator(row, serialized)
        )

    def put_queue(self, row: status_pb2.Queue, serialized: bytes | None = None) -> None:
        if has_read_time_fields(row):
            encoded: bytes | AtAnswerTime = self.encoding.waiting_queue(
                row, len(row.callers), earliest_waiting_since(row)
            )
        else:
            encoded = self.encoding.queue(row, serialized)
        self.queue_rows.put(row.name, row, encoded)

    def put_channel(self, row: status_pb2.Channel, serialized: bytes | None = None) -> None:
        self.channel_rows.put(row.unique_id, row, self.encoding.channel(row, serialized))

    def load(
        self,
        operators: Iterable[status_pb2.Operator],
        queues: Iterable[status_pb2.Queue],
        channels: Iterable[status_pb2.Channel] = (),
    ) -> None:
        """Add rows (a snapshot, a database configuration)."""
        for operator in operators:
            self.put_operator(operator)
        for queue in queues:
            self.put_queue(queue)
        for channel in channels:
            self.put_channel(channel)
        self.changed()

    def apply(self, changes: status_pb2.ChangeSet) -> None:
        """Apply the next change set; raises :class:`RevisionGap` unless it is revision + 1."""
        if changes.revision != self.revision + 1:
            raise RevisionGap(self.revision, changes.revision)
        if changes.replace_all:
            self.operator_rows.clear()
            self.queue_rows.clear()
            self.channel_rows.clear()
        for change in changes.changes:
            kind = change.WhichOneof("change")
            if kind == "operator_upserted":
                self.put_operator(change.operator_upserted)
            elif kind == "operator_removed":
                removed = change.operator_removed
                self.operator_rows.remove(operator_key(removed.queue_name, removed.member_id))
            elif kind == "queue_upserted":
                self.put_queue(change.queue_upserted)
            elif kind == "queue_removed":
                self.queue_rows.remove(change.queue_removed)
            elif kind == "channel_upserted":
                self.put_channel(change.channel_upserted)
            elif kind == "channel_removed":
                self.channel_rows.remove(change.channel_removed)
        self.revision = changes.revision
        self.changed()

    def changed(self) -> None:
        """The rows changed: per-revision caches are no longer valid (extend, calling super)."""
        self._queue_parts = None

    # -- reading --------------------------------------------------------------------------

    def operators(self) -> list[status_pb2.Operator]:
        """Every operator, ordered by queue then member."""
        return self.operator_rows.ordered()

    def queues(self, now: float) -> list[status_pb2.Queue]:
        """Every queue as answered at ``now``, ordered by name."""
        return [queue_view(queue, now) for queue in self.queue_rows.ordered()]

    def queue(self, name: str, now: float) -> status_pb2.Queue | None:
        message = self.queue_rows.messages.get(name)
        return None if message is None else queue_view(message, now)

    def channels(self) -> list[status_pb2.Channel]:
        """Every channel, ordered by uniqueid (Asterisk's uniqueids grow with time)."""
        return self.channel_rows.ordered()

    def counts(self) -> tuple[int, int, int]:
        """Operators, queues, channels."""
        return len(self.operator_rows.messages), len(self.queue_rows.messages), len(self.channel_rows.messages)

    def queues_encoded(self, now: float) -> list[bytes]:
        """Every queue's encoding as answered at ``now``, ordered by name."""
        parts = self._queue_parts
        if parts is None:
            encoded = self.queue_rows.encoded
            parts = self._queue_parts = [encoded[key] for key in self.queue_rows.order()]
        return [part if isinstance(part, bytes) else part.at(now) for part in parts]

    def queue_encoded(self, name: str, now: float) -> bytes | None:
        """One queue's encoding as answered at ``now``; None when there is no such queue."""
        encoded = self.queue_rows.encoded.get(name)
        if encoded is None or isinstance(encoded, bytes):
            return encoded
        return encoded.at(now)
