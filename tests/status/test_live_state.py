"""The status service's LiveState: loading from Redis rows and messages, freshness, snapshot answers."""

from __future__ import annotations

from switchboard.status.v1 import status_pb2

from devsupport.status_batches import channel_up, op_up, operator, queue_up
from services.status.domain.state import LiveState

NOW = 1_796_211_194.75
"""A wall-clock reading of the kind the service answers with (seconds since the epoch)."""


def changeset(revision: int, *changes: status_pb2.StateChange) -> status_pb2.ChangeSet:
    return status_pb2.ChangeSet(revision=revision, changes=list(changes))


def waiting_caller(since: float) -> status_pb2.Caller:
    return status_pb2.Caller(channel="PJSIP/trunk-1", position=1, waiting_since=since)


def busy_state() -> LiveState:
    state = LiveState(revision=41)
    state.apply(
        changeset(
            42,
            op_up("sales", "PJSIP/101"),
            op_up("support", "PJSIP/202"),
            queue_up("sales", callers=[waiting_caller(NOW - 30.0)]),
            queue_up("support"),
            channel_up("1796211190.17", started_at=NOW - 40.0),
        )
    )
    return state


def test_a_new_live_state_is_empty_at_revision_zero_and_never_fresh() -> None:
    state = LiveState()
    snapshot = status_pb2.Snapshot.FromString(state.snapshot_bytes(now=NOW, stale=True))
    assert (snapshot.revision, snapshot.last_ingest_at, state.touched_at) == (0, 0.0, 0.0)
    assert state.counts() == (0, 0, 0)


def test_a_live_state_built_at_a_revision_answers_with_it_before_any_change() -> None:
    state = LiveState(revision=1_796_211, last_ingest_at=NOW - 2.0, touched_at=NOW - 1.0)
    snapshot = status_pb2.Snapshot.FromString(state.snapshot_bytes(now=NOW, stale=False))
    assert (snapshot.revision, snapshot.last_ingest_at, snapshot.timestamp) == (1_796_211, NOW - 2.0, NOW)
    assert (snapshot.timestamp_ms, snapshot.last_ingest_at_ms) == (1_796_211_194_750, 1_796_211_192_750)
    assert state.touched_at == NOW - 1.0


def test_touch_moves_freshness_forward_and_never_back() -> None:
    state = LiveState(last_ingest_at=NOW - 5.0, touched_at=NOW - 4.0)
    state.touch(NOW - 1.0, NOW)
    assert (state.last_ingest_at, state.touched_at) == (NOW - 1.0, NOW)
    state.touch(NOW - 9.0, NOW - 8.0)  # a late heartbeat
    assert (state.last_ingest_at, state.touched_at) == (NOW - 1.0, NOW)


def test_from_rows_keeps_revision_freshness_and_every_row() -> None:
    rows = busy_state()
    state = LiveState.from_rows(
        {f"{op.queue_name}\x1f{op.member_id}".encode(): op.SerializeToString() for op in rows.operators()},
        {q.name.encode(): q.SerializeToString() for q in rows.queue_rows.ordered()},
        {c.unique_id.encode(): c.SerializeToString() for c in rows.channels()},
        revision=42,
        last_ingest_at=NOW - 3.0,
        touched_at=NOW - 2.0,
    )
    assert (state.revision, state.last_ingest_at, state.touched_at) == (42, NOW - 3.0, NOW - 2.0)
    rows.touch(NOW - 3.0, NOW - 2.0)
    assert state.snapshot(now=NOW, stale=False) == rows.snapshot(now=NOW, stale=False)


def test_from_rows_answers_with_the_stored_bytes_as_they_are() -> None:
    # Protobuf parses fields in any order; a row written field by field keeps that order in the answer.
    operator_raw = (
        status_pb2.Operator(member_id="PJSIP/101").SerializeToString()
        + status_pb2.Operator(queue_name="sales").SerializeToString()
    )
    queue_raw = (
        status_pb2.Queue(strategy="ringall").SerializeToString() + status_pb2.Queue(name="sales").SerializeToString()
    )
    channel_raw = (
        status_pb2.Channel(state="Up").SerializeToString()
        + status_pb2.Channel(unique_id="1796211190.17").SerializeToString()
    )
    state = LiveState.from_rows(
        {b"sales\x1fPJSIP/101": operator_raw},
        {b"sales": queue_raw},
        {b"1796211190.17": channel_raw},
        revision=7,
        last_ingest_at=NOW,
        touched_at=NOW,
    )
    answer = state.snapshot_bytes(now=NOW, stale=False)
    assert operator_raw in answer
    assert queue_raw in answer
    assert channel_raw in answer
    snapshot = status_pb2.Snapshot.FromString(answer)
    assert (snapshot.operators[0].queue_name, snapshot.queues[0].strategy, snapshot.channels[0].state) == (
        "sales",
        "ringall",
        "Up",
    )


def test_from_messages_loads_every_row_at_revision_zero_by_default() -> None:
    channel = channel_up("1796211190.17", started_at=NOW - 40.0).channel_upserted
    state = LiveState.from_messages([operator("sales", "PJSIP/101")], [status_pb2.Queue(name="sales")], [channel])
    assert state.counts() == (1, 1, 1)
    snapshot = state.snapshot(now=NOW, stale=False)
    assert (snapshot.revision, snapshot.last_ingest_at) == (0, 0.0)
    assert [c.unique_id for c in snapshot.channels] == ["1796211190.17"]


def test_from_messages_keeps_the_revision_and_ingest_time_it_is_given() -> None:
    state = LiveState.from_messages(
        [operator("sales", "PJSIP/101")], [status_pb2.Queue(name="sales")], revision=1_796_211, last_ingest_at=NOW - 7.0
    )
    snapshot = state.snapshot(now=NOW, stale=True)
    assert (snapshot.revision, snapshot.last_ingest_at) == (1_796_211, NOW - 7.0)
    assert [(o.queue_name, o.member_id) for o in snapshot.operators] == [("sales", "PJSIP/101")]
    assert [q.name for q in snapshot.queues] == ["sales"]


def test_snapshot_carries_the_answer_time_staleness_and_source() -> None:
    snapshot = busy_state().snapshot(now=NOW, stale=True, source=status_pb2.SOURCE_DATABASE)
    assert (snapshot.timestamp, snapshot.stale, snapshot.source) == (NOW, True, status_pb2.SOURCE_DATABASE)
    assert snapshot.queues[0].longest_wait == 30.0


def known_size(answer: bytes) -> int:
    """Bytes of the answer's known fields, each written once (as protobuf would write them)."""
    snapshot = status_pb2.Snapshot.FromString(answer)
    snapshot.DiscardUnknownFields()
    return snapshot.ByteSize()


def test_an_answer_holds_each_field_once() -> None:
    # The cached answer is a join of parts; its size is that of the message built from scratch, so no
    # part carries a field twice (protobuf would parse the last one and hide the duplicate) and no
    # part adds bytes that are not a field of the contract.
    state = busy_state()
    for queue_names in (None, ["sales"], ["support"]):
        for now in (NOW, NOW + 60.0):
            answer = state.snapshot_bytes(now=now, stale=False, queue_names=queue_names)
            assert len(answer) == known_size(answer)


def test_a_queue_whose_callers_arrived_after_the_answer_time_waits_zero() -> None:
    state = LiveState(revision=1)
    state.apply(changeset(2, queue_up("sales", callers=[waiting_caller(NOW + 5.0)])))
    answer = state.snapshot_bytes(now=NOW, stale=False)
    queue = status_pb2.Snapshot.FromString(answer).queues[0]
    assert (queue.waiting, queue.longest_wait) == (1, 0.0)
    assert len(answer) == known_size(answer)


def test_a_snapshot_limited_to_queues_has_only_their_operators_and_the_revision() -> None:
    snapshot = status_pb2.Snapshot.FromString(busy_state().snapshot_bytes(now=NOW, stale=False, queue_names=["sales"]))
    assert [(o.queue_name, o.member_id) for o in snapshot.operators] == [("sales", "PJSIP/101")]
    assert [q.name for q in snapshot.queues] == ["sales"]
    assert [c.unique_id for c in snapshot.channels] == ["1796211190.17"]
    assert snapshot.revision == 42
