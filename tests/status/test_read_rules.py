"""The status read model's read-time rules and filters (runtime.status_model.rules)."""

from __future__ import annotations

import time

import pytest
from switchboard.status.v1 import status_pb2 as S

from runtime.status_model.rules import (
    change_concerns,
    earliest_waiting_since,
    epoch_ms,
    filter_changeset,
    has_read_time_fields,
    is_member_row,
    is_stale,
    longest_wait,
    operator_key,
    operator_key_queue,
    operator_matches,
    operators_of_member,
    queue_view,
)

NOW = time.time()


def caller(unique_id: str, waited: float) -> S.Caller:
    return S.Caller(unique_id=unique_id, waiting_since=NOW - waited if waited else 0.0)


def test_an_operator_key_is_queue_and_member_joined_by_a_unit_separator() -> None:
    assert operator_key("sales", "PJSIP/1001") == "sales\x1fPJSIP/1001"


def test_the_queue_is_read_back_from_an_operator_key() -> None:
    assert operator_key_queue(operator_key("sales", "PJSIP/1001")) == "sales"


@pytest.mark.parametrize(
    ("last_ingest_ago", "stale"),
    [(1.0, False), (10.0, False), (10.5, True), (3600.0, True)],
)
def test_status_is_stale_when_the_ingest_wrote_longer_ago_than_allowed(last_ingest_ago: float, stale: bool) -> None:
    assert is_stale(NOW - last_ingest_ago, NOW, 10.0) is stale


def test_status_is_stale_when_the_ingest_never_wrote() -> None:
    assert is_stale(0.0, NOW, 10.0)


def test_never_written_is_stale_even_on_a_clock_near_the_epoch() -> None:
    assert is_stale(0.0, 1.0, 10.0)


def test_any_write_time_counts_as_a_write() -> None:
    assert not is_stale(1.0, 2.0, 10.0)


def test_a_queue_without_callers_does_not_depend_on_the_time() -> None:
    assert not has_read_time_fields(S.Queue(name="sales"))


@pytest.mark.parametrize(
    "queue",
    [
        S.Queue(name="sales", callers=[caller("1.1", 5)]),
        S.Queue(name="sales", waiting=2),
        S.Queue(name="sales", longest_wait=3.5),
    ],
)
def test_a_queue_with_callers_or_waits_depends_on_the_time(queue: S.Queue) -> None:
    assert has_read_time_fields(queue)


def test_the_longest_waiting_caller_is_the_earliest_one_that_says() -> None:
    queue = S.Queue(name="sales", callers=[caller("1.1", 5), caller("1.2", 40), caller("1.3", 0)])
    assert earliest_waiting_since(queue) == NOW - 40


def test_every_known_start_counts_however_early() -> None:
    queue = S.Queue(name="sales", callers=[S.Caller(unique_id="1.1", waiting_since=1.0)])
    assert earliest_waiting_since(queue) == 1.0


def test_no_caller_saying_when_it_started_waiting_gives_zero() -> None:
    assert earliest_waiting_since(S.Queue(name="sales", callers=[caller("1.1", 0)])) == 0.0


def test_the_longest_wait_is_measured_at_the_answer_time() -> None:
    assert longest_wait(NOW - 40, NOW) == 40


def test_an_unknown_start_means_no_wait() -> None:
    assert longest_wait(0.0, NOW) == 0.0


def test_a_start_in_the_future_is_no_wait() -> None:
    assert longest_wait(NOW + 5, NOW) == 0.0


def test_the_queue_answered_counts_its_callers_and_their_longest_wait() -> None:
    queue = S.Queue(name="sales", strategy="rrmemory", callers=[caller("1.1", 5), caller("1.2", 40)])
    view = queue_view(queue, NOW + 10)
    assert (view.name, view.strategy, view.waiting, view.longest_wait) == ("sales", "rrmemory", 2, 50)
    assert (queue.waiting, queue.longest_wait) == (0, 0.0)


def test_a_queue_without_callers_is_answered_as_stored() -> None:
    queue = S.Queue(name="sales")
    assert queue_view(queue, NOW) is queue


def test_a_stored_wait_without_callers_is_answered_as_none_waiting() -> None:
    view = queue_view(S.Queue(name="sales", waiting=3, longest_wait=12.0), NOW)
    assert (view.waiting, view.longest_wait) == (0, 0.0)


OPERATOR = S.Operator(member_id="PJSIP/1001", queue_name="sales", status=S.MEMBER_STATUS_IDLE, paused=True)


def test_an_operator_matches_no_filter() -> None:
    assert operator_matches(OPERATOR)


@pytest.mark.parametrize(
    ("filters", "matches"),
    [
        ({"queue_name": "sales"}, True),
        ({"queue_name": "support"}, False),
        ({"status": S.MEMBER_STATUS_IDLE}, True),
        ({"status": S.MEMBER_STATUS_IN_USE}, False),
        ({"paused": True}, True),
        ({"paused": False}, False),
        ({"queue_name": "sales", "status": S.MEMBER_STATUS_IDLE, "paused": True}, True),
        ({"queue_name": "sales", "status": S.MEMBER_STATUS_IDLE, "paused": False}, False),
    ],
)
def test_an_operator_matches_each_filter_given(filters: dict[str, object], matches: bool) -> None:
    assert operator_matches(OPERATOR, **filters) is matches  # type: ignore[arg-type]


def test_a_member_row_is_one_of_that_member_in_the_queue_given() -> None:
    assert is_member_row(OPERATOR, "PJSIP/1001")
    assert is_member_row(OPERATOR, "PJSIP/1001", "sales")
    assert not is_member_row(OPERATOR, "PJSIP/1001", "support")
    assert not is_member_row(OPERATOR, "PJSIP/1002")


def test_a_members_rows_are_one_per_queue() -> None:
    rows = [
        S.Operator(member_id="PJSIP/1001", queue_name="sales"),
        S.Operator(member_id="PJSIP/1002", queue_name="sales"),
        S.Operator(member_id="PJSIP/1001", queue_name="support"),
    ]
    assert [r.queue_name for r in operators_of_member(rows, "PJSIP/1001")] == ["sales", "support"]
    assert [r.queue_name for r in operators_of_member(rows, "PJSIP/1001", "support")] == ["support"]


@pytest.mark.parametrize(
    ("change", "concerns"),
    [
        (S.StateChange(operator_upserted=S.Operator(member_id="PJSIP/1", queue_name="sales")), True),
        (S.StateChange(operator_upserted=S.Operator(member_id="PJSIP/1", queue_name="support")), False),
        (S.StateChange(operator_removed=S.OperatorKey(member_id="PJSIP/1", queue_name="sales")), True),
        (S.StateChange(operator_removed=S.OperatorKey(member_id="PJSIP/1", queue_name="support")), False),
        (S.StateChange(queue_upserted=S.Queue(name="sales")), True),
        (S.StateChange(queue_upserted=S.Queue(name="support")), False),
        (S.StateChange(queue_removed="sales"), True),
        (S.StateChange(queue_removed="support"), False),
        (S.StateChange(channel_upserted=S.Channel(unique_id="1.1")), True),
        (S.StateChange(channel_removed="1.1"), True),
    ],
)
def test_a_watcher_of_some_queues_gets_their_changes_and_every_channel(change: S.StateChange, concerns: bool) -> None:
    assert change_concerns(change, {"sales"}) is concerns


def test_a_filtered_changeset_keeps_what_concerns_the_watcher() -> None:
    changes = S.ChangeSet(
        revision=1_796_217_294,
        emitted_at=NOW,
        changes=[S.StateChange(queue_upserted=S.Queue(name="sales")), S.StateChange(queue_removed="support")],
    )
    kept = filter_changeset(changes, {"sales"})
    assert kept == S.ChangeSet(
        revision=1_796_217_294, emitted_at=NOW, changes=[S.StateChange(queue_upserted=S.Queue(name="sales"))]
    )


def test_a_filtered_changeset_keeps_when_it_was_emitted_in_ms() -> None:
    changes = S.ChangeSet(
        revision=3, emitted_at_ms=1_796_217_294_250, changes=[S.StateChange(queue_upserted=S.Queue(name="sales"))]
    )
    kept = filter_changeset(changes, {"sales"})
    assert kept is not None
    assert kept.emitted_at_ms == 1_796_217_294_250


def test_epoch_ms_turns_fractions_of_a_second_into_ms_and_anything_not_positive_into_never() -> None:
    assert (epoch_ms(0.5), epoch_ms(0.25), epoch_ms(1.0)) == (500, 250, 1000)
    assert (epoch_ms(0), epoch_ms(-2.0), epoch_ms(-0.5)) == (0, 0, 0)


def test_a_changeset_of_nothing_the_watcher_follows_is_not_sent() -> None:
    changes = S.ChangeSet(revision=7, changes=[S.StateChange(queue_removed="support")])
    assert filter_changeset(changes, {"sales"}) is None


def test_a_replace_all_changeset_is_sent_even_when_nothing_else_is_left() -> None:
    changes = S.ChangeSet(revision=7, replace_all=True, changes=[S.StateChange(queue_removed="support")])
    assert filter_changeset(changes, {"sales"}) == S.ChangeSet(revision=7, replace_all=True)
