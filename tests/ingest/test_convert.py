"""A batch's changes as the status contract's messages: one change per row, its last."""

from __future__ import annotations

import pytest

from services.ami_ingest.convert import encode_changes
from services.ami_ingest.domain.model import (
    Channel,
    ChannelRemoved,
    ChannelUpserted,
    Operator,
    OperatorRemoved,
    OperatorUpserted,
    Queue,
    QueueRemoved,
    QueueUpserted,
)


def alice(reason: str) -> OperatorUpserted:
    return OperatorUpserted(Operator("sales", "Local/1001@agents", paused=bool(reason), paused_reason=reason))


def test_a_row_changed_several_times_is_sent_once_as_its_last_change() -> None:
    encoded = encode_changes([alice("lunch"), alice("coffee"), alice("")])

    assert len(encoded) == 1
    assert encoded[0].operator_upserted.paused_reason == ""
    assert not encoded[0].operator_upserted.paused


def test_rows_are_sent_in_the_order_they_last_changed() -> None:
    call = Channel("PJSIP/trunk-0001", "1700000000.1", state="Ring")
    encoded = encode_changes(
        [
            ChannelUpserted(call),
            alice("lunch"),
            QueueUpserted(Queue("sales")),
            ChannelUpserted(Channel("PJSIP/trunk-0001", "1700000000.1", state="Up")),
        ]
    )

    assert [change.WhichOneof("change") for change in encoded] == [
        "operator_upserted",
        "queue_upserted",
        "channel_upserted",
    ]
    assert encoded[2].channel_upserted.state == "Up"


def test_a_removal_replaces_the_rows_earlier_upsert() -> None:
    encoded = encode_changes(
        [
            alice("lunch"),
            OperatorRemoved("sales", "Local/1001@agents"),
            QueueUpserted(Queue("support")),
            QueueRemoved("support"),
            ChannelUpserted(Channel("PJSIP/trunk-0001", "1700000000.1")),
            ChannelRemoved("1700000000.1"),
        ]
    )

    assert [(change.WhichOneof("change")) for change in encoded] == [
        "operator_removed",
        "queue_removed",
        "channel_removed",
    ]
    assert encoded[0].operator_removed.member_id == "Local/1001@agents"
    assert encoded[1].queue_removed == "support"
    assert encoded[2].channel_removed == "1700000000.1"


def test_rows_of_different_kinds_with_the_same_name_stay_apart() -> None:
    encoded = encode_changes([QueueUpserted(Queue("1700000000.1")), ChannelRemoved("1700000000.1")])

    assert [change.WhichOneof("change") for change in encoded] == ["queue_upserted", "channel_removed"]


def test_anything_but_a_state_change_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="not a state change: 'sales'"):
        encode_changes(["sales"])  # type: ignore[list-item]
