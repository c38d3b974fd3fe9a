"""Hand-written protobuf framing at the edges of a varint byte: equal to what protobuf writes."""

from __future__ import annotations

import pytest
from switchboard.status.v1 import status_pb2

from services.status.domain import wire


@pytest.mark.parametrize("value", [0, 1, 127, 128, 129, 16_383, 16_384, 1_796_211_194_707_800])
def test_a_varint_is_the_one_protobuf_writes(value: int) -> None:
    # ChangeSet.revision (field 1, varint) of 0 is not written at all, so compare with a nonzero key.
    expected = status_pb2.ChangeSet(revision=value).SerializeToString() if value else b"\x08\x00"
    assert b"\x08" + wire.varint(value) == expected


def test_a_negative_varint_is_refused_saying_why() -> None:
    with pytest.raises(ValueError, match=r"^varint of a negative number$"):
        wire.varint(-1)


@pytest.mark.parametrize("name_length", [0, 125, 126, 20_000])
def test_a_length_delimited_field_of_any_length_is_the_one_protobuf_writes(name_length: int) -> None:
    # Queue rows of 0, 127, 128 and over 16 KiB bytes: lengths of one, one, two and three varint bytes.
    queue = status_pb2.Queue(name="q" * name_length)
    field = wire.length_delimited(wire.SNAPSHOT_QUEUES, queue.SerializeToString())
    assert field == status_pb2.Snapshot(queues=[queue]).SerializeToString()
