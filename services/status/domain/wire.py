"""Hand-assembled protobuf framing, so hot paths reuse bytes instead of re-serializing messages.

Protobuf allows a message to be written as the concatenation of its fields (and of partial
messages: parsing merges them), so a snapshot can be assembled from cached, already serialized
rows plus a small per-answer tail (timestamp, stale, ...). These helpers write the framing of
length-delimited fields (wire type 2) and varints; everything else comes from the generated
classes' ``SerializeToString``.
"""

from __future__ import annotations

import struct
from typing import Final

from runtime.status_model.rules import epoch_ms

# Field numbers of switchboard.status.v1 messages used when framing by hand.
SNAPSHOT_OPERATORS: Final = 1
SNAPSHOT_QUEUES: Final = 2
SNAPSHOT_CHANNELS: Final = 3
CHANGESET_CHANGES: Final = 2
WATCH_SNAPSHOT: Final = 1
WATCH_CHANGES: Final = 2
WATCH_FRESHNESS: Final = 3
CHANGE_OPERATOR_UPSERTED: Final = 1
CHANGE_QUEUE_UPSERTED: Final = 3
CHANGE_CHANNEL_UPSERTED: Final = 5

_LENGTH_DELIMITED: Final = 2


_ONE_BYTE: Final = tuple(bytes((value,)) for value in range(0x80))


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer."""
    # Lengths, field keys and millisecond waits: most fit one or two bytes, and this runs for
    # every waiting queue of every snapshot answer.
    if value < 0x80:
        if value < 0:
            raise ValueError("varint of a negative number")
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(field_number: int) -> bytes:
    """Key of a length-delimited field."""
    return varint((field_number << 3) | _LENGTH_DELIMITED)


def field_header(field_number: int, length: int) -> bytes:
    """Key and length prefix of a length-delimited field holding ``length`` bytes."""
    return tag(field_number) + varint(length)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """One complete length-delimited field."""
    return field_header(field_number, len(payload)) + payload


def upsert_change_header(oneof_field: int, row_length: int) -> bytes:
    """Bytes that, followed by a serialized row, form one ``ChangeSet.changes`` entry.

    The entry is ``changes`` (field 2) wrapping a ``StateChange`` whose only field is the
    upsert (``oneof_field``) holding the row; the Lua batch script appends the row it stores.
    """
    inner_header = field_header(oneof_field, row_length)
    return field_header(CHANGESET_CHANGES, len(inner_header) + row_length) + inner_header


_QUEUE_WAITING_KEY: Final = bytes([(3 << 3) | 0])  # Queue.waiting, varint
_QUEUE_LONGEST_WAIT_KEY: Final = bytes([(11 << 3) | 1])  # Queue.longest_wait, fixed64 double
_QUEUE_LONGEST_WAIT_MS_KEY: Final = varint((16 << 3) | 0)  # Queue.longest_wait_ms, varint
_DOUBLE: Final = struct.Struct("<d")


def longest_wait_field(longest_wait: float) -> bytes:
    """``Queue.longest_wait`` and ``Queue.longest_wait_ms`` (non-zero: zeros are not written)."""
    out = _QUEUE_LONGEST_WAIT_KEY + _DOUBLE.pack(longest_wait)
    ms = epoch_ms(longest_wait)
    return out + _QUEUE_LONGEST_WAIT_MS_KEY + varint(ms) if ms else out


_SNAPSHOT_QUEUES_KEY: Final = tag(SNAPSHOT_QUEUES)


def queue_entry_at(body: bytes, longest_wait: float) -> bytes:
    """A ``Snapshot.queues`` entry: ``body`` (a queue serialized without ``longest_wait``) completed
    with a non-zero ``longest_wait`` and its ``_ms``. Written out in one function, not composed
    from the helpers above: it runs for every waiting queue of every snapshot answer."""
    ms = epoch_ms(longest_wait)
    tail = _QUEUE_LONGEST_WAIT_KEY + _DOUBLE.pack(longest_wait)
    if ms:
        tail += _QUEUE_LONGEST_WAIT_MS_KEY + varint(ms)
    return _SNAPSHOT_QUEUES_KEY + varint(len(body) + len(tail)) + body + tail


def queue_wait_fields(waiting: int, longest_wait: float) -> bytes:
    """``Queue.waiting``, ``Queue.longest_wait`` and ``longest_wait_ms``, appended to a row
    serialized without them."""
    out = b""
    if waiting:
        out += _QUEUE_WAITING_KEY + varint(waiting)
    if longest_wait:
        out += longest_wait_field(longest_wait)
    return out
