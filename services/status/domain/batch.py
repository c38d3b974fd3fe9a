"""Turning state changes into the flat argument list of the Redis batch script.

Each change becomes four arguments ``op, field, value, header``:

- ``op``: ``o+``/``o-`` (operator), ``q+``/``q-`` (queue), ``c+``/``c-`` (channel);
- ``field``: the hash field (see :mod:`services.status.keys`);
- ``value``: the serialized row for an upsert, empty for a removal;
- ``header``: the bytes that, followed by ``value``, form the change's entry in a serialized
  ``ChangeSet`` — so the script assembles the stream's ChangeSet from what it stores, and the
  row crosses the wire once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from switchboard.status.v1 import status_pb2

from runtime.status_model.rules import epoch_ms
from services.status import keys
from services.status.domain import wire


@dataclass(frozen=True, slots=True)
class EncodedChanges:
    """Script arguments for a list of changes."""

    args: list[bytes]
    count: int


def _removal(field: str, op: bytes, change: status_pb2.StateChange) -> list[bytes]:
    entry = status_pb2.ChangeSet(changes=[change]).SerializeToString()
    return [op, field.encode(), b"", entry]


def _upsert(field: str, op: bytes, oneof_field: int, row: bytes) -> list[bytes]:
    return [op, field.encode(), row, wire.upsert_change_header(oneof_field, len(row))]


def encode_change(change: status_pb2.StateChange) -> list[bytes]:
    """The four script arguments of one (validated) change."""
    kind = change.WhichOneof("change")
    if kind == "operator_upserted":
        op = change.operator_upserted
        return _upsert(
            keys.operator_field(op.queue_name, op.member_id),
            b"o+",
            wire.CHANGE_OPERATOR_UPSERTED,
            op.SerializeToString(),
        )
    if kind == "operator_removed":
        key = change.operator_removed
        return _removal(keys.operator_field(key.queue_name, key.member_id), b"o-", change)
    if kind == "queue_upserted":
        queue = change.queue_upserted
        return _upsert(queue.name, b"q+", wire.CHANGE_QUEUE_UPSERTED, queue.SerializeToString())
    if kind == "queue_removed":
        return _removal(change.queue_removed, b"q-", change)
    if kind == "channel_upserted":
        channel = change.channel_upserted
        return _upsert(channel.unique_id, b"c+", wire.CHANGE_CHANNEL_UPSERTED, channel.SerializeToString())
    if kind == "channel_removed":
        return _removal(change.channel_removed, b"c-", change)
    raise ValueError("empty StateChange")


def encode_changes(changes: Iterable[status_pb2.StateChange]) -> EncodedChanges:
    args: list[bytes] = []
    count = 0
    for change in changes:
        args.extend(encode_change(change))
        count += 1
    return EncodedChanges(args, count)


def batch_emitted_at(batch: status_pb2.IngestBatch) -> float:
    """When the batch's changes were emitted, in epoch seconds: its ``emitted_at_ms``, or the
    deprecated ``emitted_at`` (seconds) when that is unset (an ingest older than the field)."""
    return batch.emitted_at_ms / 1000 if batch.emitted_at_ms > 0 else batch.emitted_at


def changeset_tail(*, emitted_at: float, replace_all: bool) -> bytes:
    """The ChangeSet fields after ``changes`` (the script prepends revision and the changes)."""
    tail = status_pb2.ChangeSet(emitted_at=emitted_at, emitted_at_ms=epoch_ms(emitted_at), replace_all=replace_all)
    return tail.SerializeToString()


def upserts_for_config(
    queues: Iterable[status_pb2.Queue], operators: Iterable[status_pb2.Operator]
) -> list[status_pb2.StateChange]:
    """Upsert changes for rows loaded from the database (used to seed Redis)."""
    changes = [status_pb2.StateChange(queue_upserted=queue) for queue in queues]
    changes.extend(status_pb2.StateChange(operator_upserted=op) for op in operators)
    return changes
