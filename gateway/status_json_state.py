"""The shared status read model with rows encoded as JSON: what the gateway's mirror holds.

:class:`JsonReadState` is a :class:`runtime.status_model.ReadState` built from a WatchSnapshot
``Snapshot`` and advanced by its ``ChangeSet`` messages. Each row is converted to JSON once, when
it arrives (:class:`JsonRows`); a whole list is joined once per revision. Only what depends on
the time of the answer is encoded per request: queues with waiting callers (``waiting`` and
``longestWaitMs``, by the read model's rules) and the envelope's timestamp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from switchboard.status.v1 import status_pb2

from gateway.status_json import channel_json, duration_ms, operator_json, queue_json
from runtime.status_model import ReadState, longest_wait
from runtime.status_model.state import Rows

__all__ = ["JsonReadState", "JsonRows", "json_array"]


def json_array(encoded: list[bytes]) -> bytes:
    """Encoded JSON values as one JSON array."""
    return b"[" + b",".join(encoded) + b"]"


class _WaitingQueue:
    """A queue with callers: its JSON completed with ``waiting`` and ``longestWaitMs`` at answer time."""

    __slots__ = ("earliest", "row", "waiting")

    def __init__(self, row: dict[str, Any], waiting: int, earliest: float) -> None:
        self.row = row
        self.waiting = waiting
        self.earliest = earliest

    def at(self, now: float) -> bytes:
        view = dict(self.row)
        view["waiting"] = self.waiting
        view["longestWaitMs"] = duration_ms(longest_wait(self.earliest, now))
        return orjson.dumps(view)


class JsonRows:
    """Rows encoded as the gateway's JSON objects (:mod:`gateway.status_json`)."""

    def operator(self, row: status_pb2.Operator, serialized: bytes | None) -> bytes:
        return orjson.dumps(operator_json(row))

    def channel(self, row: status_pb2.Channel, serialized: bytes | None) -> bytes:
        return orjson.dumps(channel_json(row))

    def queue(self, row: status_pb2.Queue, serialized: bytes | None) -> bytes:
        return orjson.dumps(queue_json(row))

    def waiting_queue(self, row: status_pb2.Queue, waiting: int, earliest: float) -> _WaitingQueue:
        return _WaitingQueue(queue_json(row), waiting, earliest)


_JSON_ROWS = JsonRows()


class JsonReadState(ReadState):
    """The rows at one revision as JSON, with each whole list joined once per revision."""

    def __init__(self, snapshot: status_pb2.Snapshot) -> None:
        super().__init__(_JSON_ROWS, revision=snapshot.revision, last_ingest_at=snapshot.last_ingest_at)
        self._operators_json: bytes | None = None
        self._channels_json: bytes | None = None
        self.load(snapshot.operators, snapshot.queues, snapshot.channels)

    def changed(self) -> None:
        super().changed()
        self._operators_json = None
        self._channels_json = None

    def operators_json(self) -> bytes:
        """Every operator (a JSON array)."""
        if self._operators_json is None:
            self._operators_json = _joined(self.operator_rows)
        return self._operators_json

    def channels_json(self) -> bytes:
        """Every channel (a JSON array)."""
        if self._channels_json is None:
            self._channels_json = _joined(self.channel_rows)
        return self._channels_json

    def queues_json(self, now: float) -> bytes:
        """Every queue as answered at ``now`` (a JSON array)."""
        return json_array(self.queues_encoded(now))

    def operators_where(self, keep: Callable[[status_pb2.Operator], bool]) -> tuple[bytes, int]:
        """The operators ``keep`` accepts, in order, as a JSON array and their count."""
        rows = self.operator_rows
        messages, encoded = rows.messages, rows.encoded
        parts = [encoded[key] for key in rows.order() if keep(messages[key])]
        return json_array(parts), len(parts)


def _joined(rows: Rows[Any, bytes]) -> bytes:
    encoded = rows.encoded
    return json_array([encoded[key] for key in rows.order()])
