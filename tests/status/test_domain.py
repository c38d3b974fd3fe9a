"""Pure logic of the status service: wire framing, live-state model, views, validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from switchboard.status.v1 import status_pb2

from devsupport.status_batches import batch, channel_up, op_rm, op_up, queue_up
from runtime.errors import InvalidArgument
from runtime.status_model.rules import epoch_ms, filter_changeset, queue_view
from services.status import keys
from services.status.domain import validation, wire
from services.status.domain.batch import encode_change
from services.status.domain.state import LiveState, RevisionGap


@given(st.integers(min_value=0, max_value=2**63))
def test_varint_matches_protobuf(value: int) -> None:
    encoded = status_pb2.ChangeSet(revision=value).SerializeToString()
    assert (b"\x08" + wire.varint(value) if value else b"") == encoded


@given(st.text(max_size=300), st.text(max_size=3000))
def test_upsert_header_plus_row_is_the_changeset_entry(queue: str, reason: str) -> None:
    change = op_up(queue or "q", "PJSIP/1", paused_reason=reason)
    op, _field, value, header = encode_change(change)
    assert op == b"o+"
    assert header + value == status_pb2.ChangeSet(changes=[change]).SerializeToString()


def changeset(revision: int, *changes: status_pb2.StateChange, replace_all: bool = False) -> status_pb2.ChangeSet:
    return status_pb2.ChangeSet(revision=revision, changes=list(changes), replace_all=replace_all)


def test_state_applies_changes_in_order_and_refuses_a_gap() -> None:
    state = LiveState()
    state.apply(changeset(1, op_up("sales", "PJSIP/1"), op_up("support", "PJSIP/1"), channel_up("1.1")))
    state.apply(changeset(2, op_rm("sales", "PJSIP/1")))
    assert [(o.queue_name, o.member_id) for o in state.operators()] == [("support", "PJSIP/1")]
    with pytest.raises(RevisionGap):
        state.apply(changeset(4, op_up("sales", "PJSIP/2")))
    assert state.revision == 2


def test_replace_all_keeps_only_the_new_rows() -> None:
    state = LiveState()
    state.apply(changeset(1, op_up("sales", "PJSIP/1"), queue_up("sales"), channel_up("1.1")))
    state.apply(changeset(2, op_up("sales", "PJSIP/2"), replace_all=True))
    assert [o.member_id for o in state.operators()] == ["PJSIP/2"]
    assert state.counts() == (1, 0, 0)


def test_snapshot_bytes_parse_to_the_same_snapshot_as_building_it() -> None:
    state = LiveState()
    caller = status_pb2.Caller(channel="PJSIP/trunk-1", position=1, waiting_since=90.0)
    state.apply(
        changeset(
            1,
            op_up("b", "PJSIP/2"),
            op_up("a", "PJSIP/1", paused=True),
            queue_up("b"),
            queue_up("a", callers=[caller]),
            channel_up("2.0"),
            channel_up("1.0"),
        )
    )
    state.touch(95.0, 95.0)
    snapshot = status_pb2.Snapshot.FromString(state.snapshot_bytes(now=100.0, stale=True))
    assert [o.queue_name for o in snapshot.operators] == ["a", "b"]
    assert [q.name for q in snapshot.queues] == ["a", "b"]
    assert [c.unique_id for c in snapshot.channels] == ["1.0", "2.0"]
    assert snapshot.queues[0].waiting == 1
    assert snapshot.queues[0].longest_wait == pytest.approx(10.0)
    assert (snapshot.revision, snapshot.timestamp, snapshot.stale, snapshot.last_ingest_at) == (1, 100.0, True, 95.0)
    assert snapshot.source == status_pb2.SOURCE_REDIS
    # The second answer, later, reuses cached rows but recomputes the wait.
    later = status_pb2.Snapshot.FromString(state.snapshot_bytes(now=130.0, stale=False))
    assert later.queues[0].longest_wait == pytest.approx(40.0)
    assert later.operators == snapshot.operators


def test_queue_view_counts_callers_and_longest_wait() -> None:
    queue = status_pb2.Queue(
        name="q",
        callers=[status_pb2.Caller(waiting_since=50.0), status_pb2.Caller(waiting_since=80.0)],
    )
    view = queue_view(queue, now=100.0)
    assert (view.waiting, view.longest_wait) == (2, 50.0)
    assert queue_view(status_pb2.Queue(name="empty"), now=100.0).longest_wait == 0.0


def test_filtered_changeset_keeps_the_watched_queues_and_every_channel() -> None:
    changes = changeset(7, op_up("sales", "PJSIP/1"), op_up("support", "PJSIP/2"), queue_up("support"), channel_up("1"))
    part = filter_changeset(changes, {"sales"})
    assert part is not None
    assert [c.WhichOneof("change") for c in part.changes] == ["operator_upserted", "channel_upserted"]
    assert part.revision == 7
    assert filter_changeset(changeset(8, op_up("support", "PJSIP/2")), {"sales"}) is None


CLOCK_TOKEN = 1_796_211_194_707_800
"""A token as ami_ingest's leader gets it (the Redis clock in µs)."""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (op_up("sales", ""), "changes[0].operator_upserted.member_id"),
        (op_up("x" * 129, "PJSIP/1"), "changes[0].operator_upserted.queue_name"),
        (op_up("sales", "PJSIP/1", status=42), "changes[0].operator_upserted.status"),
        (op_up("sales", "PJSIP/1", membership=9), "changes[0].operator_upserted.membership"),
        (op_up("sa\x1fles", "PJSIP/1"), "changes[0].operator_upserted.queue_name"),
        (status_pb2.StateChange(), "changes[0]"),
        (status_pb2.StateChange(channel_removed=""), "changes[0].channel_removed"),
    ],
)
def test_invalid_batches_name_the_field(change: status_pb2.StateChange, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        validation.check_batch(batch(change, token=CLOCK_TOKEN))
    assert error.value.field == field


def test_a_batch_without_source_is_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        validation.check_batch(batch(source="", token=CLOCK_TOKEN))
    assert error.value.field == "source_id"


def test_a_batch_without_a_fencing_token_is_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        validation.check_batch(batch(op_up("sales", "PJSIP/1"), token=0))
    assert error.value.field == "fencing_token"


keys_strategy = st.sampled_from([("q1", "PJSIP/1"), ("q1", "PJSIP/2"), ("q2", "PJSIP/1"), ("q3", "Local/9@agents")])
change_strategy = st.one_of(
    st.builds(lambda k, p: op_up(k[0], k[1], penalty=p), keys_strategy, st.integers(0, 9)),
    st.builds(lambda k: op_rm(k[0], k[1]), keys_strategy),
    st.builds(lambda n: queue_up(n), st.sampled_from(["q1", "q2"])),
    st.builds(lambda n: status_pb2.StateChange(queue_removed=n), st.sampled_from(["q1", "q2"])),
    st.builds(lambda u: channel_up(u, started_at=1.0), st.sampled_from(["1.1", "1.2"])),
    st.builds(lambda u: status_pb2.StateChange(channel_removed=u), st.sampled_from(["1.1", "1.2"])),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(change_strategy, max_size=6), st.booleans()), max_size=8))
def test_state_equals_a_plain_dict_model(sets: list[tuple[list[status_pb2.StateChange], bool]]) -> None:
    state = LiveState()
    model: dict[str, dict[str, bytes]] = {"o": {}, "q": {}, "c": {}}
    for revision, (changes, replace_all) in enumerate(sets, start=1):
        state.apply(changeset(revision, *changes, replace_all=replace_all))
        if replace_all:
            model = {"o": {}, "q": {}, "c": {}}
        for change in changes:
            op, field, value, _ = encode_change(change)
            rows = model[op[:1].decode()]
            if op.endswith(b"+"):
                rows[field.decode()] = value
            else:
                rows.pop(field.decode(), None)
    assert {keys.operator_field(o.queue_name, o.member_id): o.SerializeToString() for o in state.operators()} == model[
        "o"
    ]
    assert {q.name: q.SerializeToString() for q in state.queues(0.0)} == model["q"]
    assert {c.unique_id: c.SerializeToString() for c in state.channels()} == model["c"]


@given(st.integers(0, 10_000), st.floats(0, 1e6, allow_nan=False))
def test_queue_wait_fields_match_protobuf(waiting: int, longest_wait: float) -> None:
    expected = status_pb2.Queue(
        waiting=waiting, longest_wait=longest_wait, longest_wait_ms=epoch_ms(longest_wait)
    ).SerializeToString()
    assert wire.queue_wait_fields(waiting, longest_wait) == expected


@given(
    waits=st.lists(st.floats(min_value=0.0, max_value=500.0), min_size=1, max_size=4),
    answer_times=st.lists(st.floats(min_value=0.0, max_value=1000.0), min_size=1, max_size=4),
)
def test_cached_snapshot_answers_equal_the_built_snapshot_at_every_time(
    waits: list[float], answer_times: list[float]
) -> None:
    state = LiveState()
    callers = [status_pb2.Caller(channel=f"PJSIP/t-{i}", position=i + 1, waiting_since=w) for i, w in enumerate(waits)]
    state.apply(changeset(1, queue_up("a", callers=callers), queue_up("b"), queue_up("c", callers=callers[:1])))
    for revision, now in enumerate(answer_times, start=2):
        for names in (None, ["a", "b"]):
            got = status_pb2.Snapshot.FromString(state.snapshot_bytes(now=now, stale=False, queue_names=names))
            expected = [q for q in state.queues(now) if names is None or q.name in names]
            assert list(got.queues) == expected
        state.apply(changeset(revision, op_up("a", f"PJSIP/{revision}")))  # a new revision: caches rebuilt
