"""The gateway's copy of the live rows, kept as encoded JSON (pure: no I/O, no clock).

:class:`MirrorState` is built from a WatchSnapshot ``Snapshot`` and advanced by its
``ChangeSet`` messages, strictly in revision order (:class:`MirrorGap` otherwise). Each row is
converted to JSON once, when it arrives; a whole list is joined once per revision. Only what
depends on the time of the answer is encoded per request: queues with waiting callers
(``waiting``/``longestWait``, computed as the status service's ``queue_view`` does) and the
envelope's timestamp. Orders are the status service's: operators by ``<queue>\\x1f<member>``,
queues by name, channels by uniqueid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from switchboard.status.v1 import status_pb2

from gateway.status_json import channel_json, operator_json, queue_json

__all__ = ["MirrorGap", "MirrorState", "has_read_time_fields", "queue_view_json"]

OPERATOR_FIELD_SEPARATOR = "\x1f"
"""As in the status service's keys.operator_field: the operator order is the sort of these keys."""

RowT = TypeVar("RowT", status_pb2.Operator, status_pb2.Queue, status_pb2.Channel)


class MirrorGap(Exception):
    """A change set does not follow the mirror's revision: the watch must start over."""


def operator_key(queue_name: str, member_id: str) -> str:
    return f"{queue_name}{OPERATOR_FIELD_SEPARATOR}{member_id}"


def has_read_time_fields(queue: status_pb2.Queue) -> bool:
    """Same rule as the status service: the answer depends on the clock when callers wait."""
    return bool(queue.callers) or queue.waiting != 0 or queue.longest_wait != 0.0


def queue_view_json(row: dict[str, Any], earliest: float, now: float) -> dict[str, Any]:
    """A waiting queue's JSON at ``now``: ``waiting`` = callers, ``longestWait`` from the earliest caller."""
    view = dict(row)
    view["waiting"] = len(row["callers"])
    view["longestWait"] = max(0.0, now - earliest) if earliest else 0.0
    return view


@dataclass
class _Rows(Generic[RowT]):
    """One entity kind: the messages (for filters), each row's JSON bytes, the joined list per revision."""

    to_json: Callable[[RowT], dict[str, Any]]
    messages: dict[str, RowT] = field(default_factory=dict)
    encoded: dict[str, bytes] = field(default_factory=dict)
    _order: list[str] | None = None
    _joined: bytes | None = None

    def put(self, key: str, message: RowT) -> None:
        if key not in self.messages:
            self._order = None
        self.messages[key] = message
        self.encoded[key] = orjson.dumps(self.to_json(message))
        self._joined = None

    def remove(self, key: str) -> None:
        if self.messages.pop(key, None) is not None:
            del self.encoded[key]
            self._order = None
            self._joined = None

    def clear(self) -> None:
        self.messages.clear()
        self.encoded.clear()
        self._order = None
        self._joined = None

    def order(self) -> list[str]:
        if self._order is None:
            self._order = sorted(self.messages)
        return self._order

    def joined(self) -> bytes:
        """The whole list as a JSON array."""
        if self._joined is None:
            encoded = self.encoded
            self._joined = b"[" + b",".join([encoded[key] for key in self.order()]) + b"]"
        return self._joined

    def select(self, keep: Callable[[RowT], bool]) -> tuple[bytes, int]:
        """The rows ``keep`` accepts, in order, as a JSON array and their count."""
        messages, encoded = self.messages, self.encoded
        parts = [encoded[key] for key in self.order() if keep(messages[key])]
        return b"[" + b",".join(parts) + b"]", len(parts)


class MirrorState:
    """The rows at one revision, as the status service holds them."""

    def __init__(self, snapshot: status_pb2.Snapshot) -> None:
        self.revision = snapshot.revision
        self.operators: _Rows[status_pb2.Operator] = _Rows(operator_json)
        self.queues: _Rows[status_pb2.Queue] = _Rows(queue_json)
        self.channels: _Rows[status_pb2.Channel] = _Rows(channel_json)
        self._waiting: dict[str, tuple[dict[str, Any], float]] = {}
        """Queues with callers: their JSON row and the earliest ``waitingSince`` (0 when none)."""
        self._queue_parts: list[bytes | tuple[dict[str, Any], float]] | None = None
        self._frame: tuple[bytes, bytes] | None = None
        self._load(snapshot.operators, snapshot.queues, snapshot.channels)

    def _load(
        self,
        operators: Iterable[status_pb2.Operator],
        queues: Iterable[status_pb2.Queue],
        channels: Iterable[status_pb2.Channel],
    ) -> None:
        for op in operators:
            self.operators.put(operator_key(op.queue_name, op.member_id), op)
        for queue in queues:
            self._put_queue(queue)
        for channel in channels:
            self.channels.put(channel.unique_id, channel)

    def _put_queue(self, queue: status_pb2.Queue) -> None:
        self.queues.put(queue.name, queue)
        self._waiting.pop(queue.name, None)
        if has_read_time_fields(queue):
            starts = [c.waiting_since for c in queue.callers if c.waiting_since > 0]
            self._waiting[queue.name] = (queue_json(queue), min(starts) if starts else 0.0)

    def apply(self, changes: status_pb2.ChangeSet) -> None:
        """Apply the next change set; raises :class:`MirrorGap` unless it is revision + 1."""
        if changes.revision != self.revision + 1:
            raise MirrorGap(f"change set revision {changes.revision} does not follow {self.revision}")
        if changes.replace_all:
            self.operators.clear()
            self.queues.clear()
            self.channels.clear()
            self._waiting.clear()
        for change in changes.changes:
            kind = change.WhichOneof("change")
            if kind == "operator_upserted":
                op = change.operator_upserted
                self.operators.put(operator_key(op.queue_name, op.member_id), op)
            elif kind == "operator_removed":
                removed = change.operator_removed
                self.operators.remove(operator_key(removed.queue_name, removed.member_id))
            elif kind == "queue_upserted":
                self._put_queue(change.queue_upserted)
            elif kind == "queue_removed":
                self.queues.remove(change.queue_removed)
                self._waiting.pop(change.queue_removed, None)
            elif kind == "channel_upserted":
                self.channels.put(change.channel_upserted.unique_id, change.channel_upserted)
            elif kind == "channel_removed":
                self.channels.remove(change.channel_removed)
        self.revision = changes.revision
        self._queue_parts = None
        self._frame = None

    # -- JSON at answer time ---------------------------------------------------------------

    def snapshot_frame(self) -> tuple[bytes, bytes]:
        """Per revision: the ``/snapshot`` body before the queues (envelope + operators) and after
        them (channels), so an answer joins them with the queues and the tail in one copy."""
        if self._frame is None:
            self._frame = (
                b'{"success":true,"data":{"operators":' + self.operators.joined() + b',"queues":',
                b',"channels":' + self.channels.joined(),
            )
        return self._frame

    def queues_json(self, now: float) -> bytes:
        """Every queue as answered at ``now`` (a JSON array)."""
        if self._queue_parts is None:
            self._queue_parts = [self._waiting.get(name) or self.queues.encoded[name] for name in self.queues.order()]
        parts = [
            part if isinstance(part, bytes) else orjson.dumps(queue_view_json(part[0], part[1], now))
            for part in self._queue_parts
        ]
        return b"[" + b",".join(parts) + b"]"

    def queue_json(self, name: str, now: float) -> bytes | None:
        """One queue as answered at ``now``; None when there is no such queue."""
        waiting = self._waiting.get(name)
        if waiting is not None:
            return orjson.dumps(queue_view_json(waiting[0], waiting[1], now))
        return self.queues.encoded.get(name)
