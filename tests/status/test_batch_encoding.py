"""Changes as the Redis batch script's arguments: what it stores and the ChangeSet it assembles."""

from __future__ import annotations

import pytest
from switchboard.status.v1 import status_pb2

from devsupport.status_batches import channel_up, op_rm, op_up, operator, queue_up
from services.status.domain import wire
from services.status.domain.batch import (
    batch_emitted_at,
    changeset_tail,
    encode_change,
    encode_changes,
    upserts_for_config,
)

EMITTED_AT = 1_796_211_194.75
REVISION = 1_796_211


@pytest.mark.parametrize(
    ("change", "op", "field"),
    [
        (op_rm("sales", "PJSIP/101"), b"o-", b"sales\x1fPJSIP/101"),
        (status_pb2.StateChange(queue_removed="sales"), b"q-", b"sales"),
        (status_pb2.StateChange(channel_removed="1796211190.17"), b"c-", b"1796211190.17"),
    ],
)
def test_a_removal_stores_nothing_and_carries_its_whole_changeset_entry(
    change: status_pb2.StateChange, op: bytes, field: bytes
) -> None:
    assert encode_change(change) == [op, field, b"", status_pb2.ChangeSet(changes=[change]).SerializeToString()]


def script_changeset(revision: int, encoded: list[bytes], tail: bytes) -> status_pb2.ChangeSet:
    """The ChangeSet the batch script assembles: revision, each change's header + value, the tail."""
    entries = b"".join(encoded[i + 3] + encoded[i + 2] for i in range(0, len(encoded), 4))
    return status_pb2.ChangeSet.FromString(status_pb2.ChangeSet(revision=revision).SerializeToString() + entries + tail)


def test_encoded_changes_are_every_changes_arguments_in_order_with_their_count() -> None:
    changes = [
        op_up("sales", "PJSIP/101"),
        queue_up("sales"),
        channel_up("1796211190.17", started_at=EMITTED_AT),
        op_rm("sales", "PJSIP/102"),
    ]
    encoded = encode_changes(iter(changes))
    assert encoded.count == 4
    assert encoded.args == [arg for change in changes for arg in encode_change(change)]
    assembled = script_changeset(REVISION, encoded.args, b"")
    assert list(assembled.changes) == changes


def test_no_changes_encode_to_no_arguments() -> None:
    encoded = encode_changes([])
    assert (encoded.args, encoded.count) == ([], 0)


@pytest.mark.parametrize("replace_all", [True, False])
def test_the_tail_completes_the_assembled_changeset(replace_all: bool) -> None:
    change = op_up("sales", "PJSIP/101")
    tail = changeset_tail(emitted_at=EMITTED_AT, replace_all=replace_all)
    assembled = script_changeset(REVISION, encode_change(change), tail)
    assert assembled == status_pb2.ChangeSet(
        revision=REVISION,
        changes=[change],
        emitted_at=EMITTED_AT,
        emitted_at_ms=1_796_211_194_750,
        replace_all=replace_all,
    )


@pytest.mark.parametrize(
    ("emitted_at", "emitted_at_ms", "seconds"),
    [
        (0.0, 1_796_211_194_750, 1_796_211_194.75),  # a batch with the ms field only
        (1.0, 1_796_211_194_750, 1_796_211_194.75),  # the ms field wins over the seconds
        (EMITTED_AT, 0, EMITTED_AT),  # an ingest older than emitted_at_ms
        (0.0, 0, 0.0),  # never
        (5.0, 1, 0.001),  # the smallest ms value still wins over the seconds
    ],
)
def test_a_batch_was_emitted_at_its_ms_field_else_its_deprecated_seconds(
    emitted_at: float, emitted_at_ms: int, seconds: float
) -> None:
    batch = status_pb2.IngestBatch(emitted_at=emitted_at, emitted_at_ms=emitted_at_ms)
    assert batch_emitted_at(batch) == seconds


def test_upserts_for_config_upserts_every_queue_then_every_operator() -> None:
    queues = [status_pb2.Queue(name="sales", strategy="ringall"), status_pb2.Queue(name="support")]
    operators = [operator("sales", "PJSIP/101"), operator("support", "PJSIP/202")]
    changes = upserts_for_config(iter(queues), iter(operators))
    assert [c.WhichOneof("change") for c in changes] == ["queue_upserted"] * 2 + ["operator_upserted"] * 2
    assert [c.queue_upserted for c in changes[:2]] == queues
    assert [c.operator_upserted for c in changes[2:]] == operators


def test_an_upsert_header_frames_a_row_of_any_realistic_size() -> None:
    row = operator("sales", "PJSIP/101", paused_reason="x" * 1024).SerializeToString()
    header = wire.upsert_change_header(wire.CHANGE_OPERATOR_UPSERTED, len(row))
    parsed = status_pb2.ChangeSet.FromString(header + row)
    assert parsed.changes[0].operator_upserted.SerializeToString() == row


def test_an_empty_change_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match=r"^empty StateChange$"):
        encode_change(status_pb2.StateChange())
