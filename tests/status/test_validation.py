"""Status request and batch validation: each refusal names its field and says what is wrong."""

from __future__ import annotations

import time

import pytest
from switchboard.status.v1 import status_pb2 as S

from devsupport.status_batches import batch, op_up
from runtime.errors import InvalidArgument
from services.status.domain import validation

CLOCK_TOKEN = time.time_ns() // 1000  # fencing tokens are microsecond clock readings


def refusal(change: S.StateChange) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as refused:
        validation.check_batch(batch(change, token=CLOCK_TOKEN))
    return refused.value.field, refused.value.problem


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (S.StateChange(), "changes[0]", "empty StateChange (no change set)"),
        (op_up("", "PJSIP/1"), "changes[0].operator_upserted.queue_name", "must not be empty"),
        (op_up("q" * 129, "PJSIP/1"), "changes[0].operator_upserted.queue_name", "too long (129 > 128 characters)"),
        (
            op_up("sales", "PJSIP/\x1f1"),
            "changes[0].operator_upserted.member_id",
            "must not contain control characters",
        ),
        (op_up("sales", "P" * 257), "changes[0].operator_upserted.member_id", "too long (257 > 256 characters)"),
        (op_up("sales", "PJSIP/1", status=9), "changes[0].operator_upserted.status", "unknown MemberStatus value 9"),
        (
            op_up("sales", "PJSIP/1", membership=7),
            "changes[0].operator_upserted.membership",
            "unknown Membership value 7",
        ),
        (op_up("sales", "PJSIP/1", status_code=9), "changes[0].operator_upserted.status_code", "must be 0-8 (got 9)"),
        (
            op_up("sales", "PJSIP/1", paused_reason="x" * 1025),
            "changes[0].operator_upserted.paused_reason",
            "too long (1025 > 1024 characters)",
        ),
        (
            S.StateChange(operator_removed=S.OperatorKey(queue_name="sales", member_id="")),
            "changes[0].operator_removed.member_id",
            "must not be empty",
        ),
        (
            S.StateChange(operator_removed=S.OperatorKey(queue_name="", member_id="PJSIP/1")),
            "changes[0].operator_removed.queue_name",
            "must not be empty",
        ),
        (S.StateChange(queue_upserted=S.Queue(name="")), "changes[0].queue_upserted.name", "must not be empty"),
        (
            S.StateChange(queue_upserted=S.Queue(name="sales", strategy="s" * 1025)),
            "changes[0].queue_upserted.strategy",
            "too long (1025 > 1024 characters)",
        ),
        (
            S.StateChange(queue_upserted=S.Queue(name="sales", callers=[S.Caller(), S.Caller(channel="c" * 1025)])),
            "changes[0].queue_upserted.callers[1].channel",
            "too long (1025 > 1024 characters)",
        ),
        (S.StateChange(queue_removed="\x7fsales"), "changes[0].queue_removed", "must not contain control characters"),
        (
            S.StateChange(channel_upserted=S.Channel(unique_id="")),
            "changes[0].channel_upserted.unique_id",
            "must not be empty",
        ),
        (
            S.StateChange(channel_upserted=S.Channel(unique_id="1.1", bridge_id="b" * 1025)),
            "changes[0].channel_upserted.bridge_id",
            "too long (1025 > 1024 characters)",
        ),
        (S.StateChange(channel_removed="u" * 257), "changes[0].channel_removed", "too long (257 > 256 characters)"),
    ],
)
def test_a_bad_change_is_refused_naming_its_field(change: S.StateChange, field: str, problem: str) -> None:
    assert refusal(change) == (field, problem)


@pytest.mark.parametrize(
    "change",
    [
        op_up("q" * 128, "P" * 256, status=S.MEMBER_STATUS_ON_HOLD, status_code=8, paused_reason="x" * 1024),
        S.StateChange(queue_upserted=S.Queue(name="sales", strategy="s" * 1024)),
        S.StateChange(channel_removed="u" * 256),
        S.StateChange(operator_removed=S.OperatorKey(queue_name="q" * 128, member_id="P" * 256)),
        op_up("sales", "PJSIP/1", status_code=0),
    ],
)
def test_values_at_their_limits_are_accepted(change: S.StateChange) -> None:
    validation.check_batch(batch(change, token=CLOCK_TOKEN))


def test_a_batch_names_the_index_of_its_bad_change() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.check_batch(batch(op_up("sales", "PJSIP/1"), op_up("sales", ""), token=CLOCK_TOKEN))
    assert refused.value.field == "changes[1].operator_upserted.member_id"


def test_a_batch_emitted_before_the_epoch_is_refused() -> None:
    bad = batch(op_up("sales", "PJSIP/1"), token=CLOCK_TOKEN)
    bad.emitted_at = -1.0
    with pytest.raises(InvalidArgument) as refused:
        validation.check_batch(bad)
    assert (refused.value.field, refused.value.problem) == ("emitted_at", "must not be negative")


def test_a_batch_without_an_emission_time_is_accepted() -> None:
    unstamped = batch(op_up("sales", "PJSIP/1"), token=CLOCK_TOKEN)
    unstamped.emitted_at = 0.0
    validation.check_batch(unstamped)


def test_the_smallest_lease_token_is_accepted() -> None:
    validation.check_batch(batch(op_up("sales", "PJSIP/1"), token=1))


def test_a_batch_of_the_most_changes_is_accepted_and_one_more_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real limit (200,000) takes seconds to validate at its edge; the rule is the same at 3.
    monkeypatch.setattr(validation, "MAX_CHANGES_PER_BATCH", 3)
    validation.check_batch(batch(*[op_up("sales", f"PJSIP/{i}") for i in range(3)], token=CLOCK_TOKEN))
    with pytest.raises(InvalidArgument) as refused:
        validation.check_batch(batch(*[op_up("sales", f"PJSIP/{i}") for i in range(4)], token=CLOCK_TOKEN))
    assert (refused.value.field, refused.value.problem) == ("changes", "too many changes (4 > 3)")


def test_a_batch_without_a_lease_holders_token_is_refused_saying_so() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.check_batch(batch(op_up("sales", "PJSIP/1"), token=0))
    assert refused.value.problem == "must be the lease holder's token (> 0)"


def test_a_source_id_of_128_characters_is_accepted_and_129_refused() -> None:
    validation.check_batch(batch(source="s" * 128, token=CLOCK_TOKEN))
    with pytest.raises(InvalidArgument) as refused:
        validation.check_batch(batch(source="s" * 129, token=CLOCK_TOKEN))
    assert refused.value.field == "source_id"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (S.ListOperatorsRequest(queue_name=""), "queue_name"),
        (S.ListOperatorsRequest(status=42), "status"),  # type: ignore[arg-type]
    ],
)
def test_list_operators_filters_are_checked(request_: S.ListOperatorsRequest, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.check_list_operators(request_)
    assert refused.value.field == field


def test_list_operators_without_filters_is_valid() -> None:
    validation.check_list_operators(S.ListOperatorsRequest())
    validation.check_list_operators(S.ListOperatorsRequest(queue_name="sales", status=S.MEMBER_STATUS_IDLE))


def test_get_operator_needs_a_member_and_checks_its_queue() -> None:
    validation.check_get_operator(S.GetOperatorRequest(member_id="PJSIP/1", queue_name="sales"))
    with pytest.raises(InvalidArgument) as refused:
        validation.check_get_operator(S.GetOperatorRequest(member_id="PJSIP/1", queue_name=""))
    assert refused.value.field == "queue_name"
    with pytest.raises(InvalidArgument) as refused:
        validation.check_get_operator(S.GetOperatorRequest())
    assert refused.value.field == "member_id"


def test_get_queue_needs_a_name() -> None:
    validation.check_get_queue(S.GetQueueRequest(name="q" * 128))
    with pytest.raises(InvalidArgument) as refused:
        validation.check_get_queue(S.GetQueueRequest())
    assert refused.value.field == "name"


def test_a_watch_of_at_most_1000_named_queues_is_valid() -> None:
    validation.check_watch(S.WatchSnapshotRequest(queue_names=[f"q{i}" for i in range(1000)]))


def test_a_watch_of_more_than_1000_queues_is_refused() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.check_watch(S.WatchSnapshotRequest(queue_names=[f"q{i}" for i in range(1001)]))
    assert (refused.value.field, refused.value.problem) == ("queue_names", "too many queues (1001 > 1000)")


def test_a_watch_names_the_index_of_its_bad_queue() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.check_watch(S.WatchSnapshotRequest(queue_names=["sales", ""]))
    assert refused.value.field == "queue_names[1]"
