"""The shared read model's state (runtime.status_model.state): rows, revisions, encodings."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from switchboard.status.v1 import status_pb2 as S

from runtime.status_model.state import ReadState, RevisionGap, Rows

NOW = 1_796_208_668.0


@dataclass(frozen=True)
class WaitingAt:
    name: str
    waiting: int
    earliest: float

    def at(self, now: float) -> bytes:
        return f"{self.name}:{self.waiting} waiting for {now - self.earliest:g}s".encode()


@dataclass
class RecordingEncoding:
    """Encodes a row as its identity and the serialized bytes it was handed, and records calls."""

    serialized_seen: list[bytes | None] = field(default_factory=list)

    def operator(self, row: S.Operator, serialized: bytes | None) -> bytes:
        self.serialized_seen.append(serialized)
        return f"op:{row.queue_name}/{row.member_id}".encode()

    def channel(self, row: S.Channel, serialized: bytes | None) -> bytes:
        self.serialized_seen.append(serialized)
        return f"ch:{row.unique_id}".encode()

    def queue(self, row: S.Queue, serialized: bytes | None) -> bytes:
        self.serialized_seen.append(serialized)
        return f"q:{row.name}".encode()

    def waiting_queue(self, row: S.Queue, waiting: int, earliest: float) -> WaitingAt:
        return WaitingAt(row.name, waiting, earliest)


def operator(queue: str, member: str) -> S.Operator:
    return S.Operator(queue_name=queue, member_id=member)


def upsert_operator(queue: str, member: str) -> S.StateChange:
    return S.StateChange(operator_upserted=operator(queue, member))


def change_set(revision: int, *changes: S.StateChange, replace_all: bool = False) -> S.ChangeSet:
    return S.ChangeSet(revision=revision, changes=changes, replace_all=replace_all)


def test_a_new_state_is_at_revision_zero_and_never_ingested() -> None:
    state = ReadState(RecordingEncoding())
    assert (state.revision, state.last_ingest_at, state.counts()) == (0, 0.0, (0, 0, 0))


def test_a_revision_gap_names_the_revision_held_and_the_one_received() -> None:
    state = ReadState(RecordingEncoding(), revision=4)
    with pytest.raises(RevisionGap) as gap:
        state.apply(change_set(6))
    assert (gap.value.have, gap.value.got) == (4, 6)
    assert str(gap.value) == "change set revision 6 does not follow 4"


def test_loaded_rows_are_answered_in_order_with_their_encodings() -> None:
    state = ReadState(RecordingEncoding())
    state.load(
        [operator("sales", "PJSIP/2"), operator("billing", "PJSIP/9"), operator("sales", "PJSIP/1")],
        [S.Queue(name="sales"), S.Queue(name="billing")],
        [S.Channel(unique_id="1700000002.2"), S.Channel(unique_id="1700000001.1")],
    )
    assert [(o.queue_name, o.member_id) for o in state.operators()] == [
        ("billing", "PJSIP/9"),
        ("sales", "PJSIP/1"),
        ("sales", "PJSIP/2"),
    ]
    assert [q.name for q in state.queues(NOW)] == ["billing", "sales"]
    assert [c.unique_id for c in state.channels()] == ["1700000001.1", "1700000002.2"]
    assert state.queues_encoded(NOW) == [b"q:billing", b"q:sales"]
    assert state.counts() == (3, 2, 2)


def test_serialized_bytes_at_hand_are_passed_to_the_encoding() -> None:
    encoding = RecordingEncoding()
    state = ReadState(encoding)
    state.put_operator(operator("sales", "PJSIP/1"), b"op-bytes")
    state.put_queue(S.Queue(name="sales"), b"queue-bytes")
    state.put_channel(S.Channel(unique_id="1.1"), b"channel-bytes")
    assert encoding.serialized_seen == [b"op-bytes", b"queue-bytes", b"channel-bytes"]


def test_rows_put_before_any_change_set_are_answered() -> None:
    state = ReadState(RecordingEncoding())
    state.put_queue(S.Queue(name="sales"))
    assert state.queues_encoded(NOW) == [b"q:sales"]


def test_a_queue_is_read_by_name_at_the_answer_time() -> None:
    state = ReadState(RecordingEncoding())
    callers = [S.Caller(unique_id="1.1", waiting_since=NOW - 30)]
    state.load([], [S.Queue(name="sales", strategy="ringall", callers=callers), S.Queue(name="billing")])
    sales = state.queue("sales", NOW)
    assert sales is not None
    assert (sales.name, sales.strategy, sales.waiting, sales.longest_wait) == ("sales", "ringall", 1, 30.0)
    billing = state.queue("billing", NOW)
    assert billing is not None
    assert billing.name == "billing"
    assert state.queue("nope", NOW) is None


def test_a_queue_with_callers_is_encoded_at_the_answer_time() -> None:
    state = ReadState(RecordingEncoding())
    callers = [S.Caller(unique_id="1.1", waiting_since=NOW - 30), S.Caller(unique_id="1.2", waiting_since=NOW - 5)]
    state.load([], [S.Queue(name="sales", callers=callers), S.Queue(name="billing")])
    assert state.queues_encoded(NOW) == [b"q:billing", b"sales:2 waiting for 30s"]
    assert state.queue_encoded("sales", NOW + 10) == b"sales:2 waiting for 40s"
    assert state.queue_encoded("billing", NOW) == b"q:billing"
    assert state.queue_encoded("nope", NOW) is None


def test_a_change_set_upserts_and_removes_each_kind_of_row() -> None:
    state = ReadState(RecordingEncoding())
    state.load([operator("sales", "PJSIP/1")], [S.Queue(name="sales")], [S.Channel(unique_id="1.1")])
    state.apply(
        change_set(
            1,
            upsert_operator("sales", "PJSIP/2"),
            S.StateChange(operator_removed=S.OperatorKey(queue_name="sales", member_id="PJSIP/1")),
            S.StateChange(queue_upserted=S.Queue(name="billing")),
            S.StateChange(queue_removed="sales"),
            S.StateChange(channel_upserted=S.Channel(unique_id="2.2")),
            S.StateChange(channel_removed="1.1"),
        )
    )
    assert state.revision == 1
    assert [o.member_id for o in state.operators()] == ["PJSIP/2"]
    assert [q.name for q in state.queues(NOW)] == ["billing"]
    assert state.queues_encoded(NOW) == [b"q:billing"]
    assert [c.unique_id for c in state.channels()] == ["2.2"]


def test_replace_all_drops_every_row_not_in_it() -> None:
    state = ReadState(RecordingEncoding())
    state.load([operator("sales", "PJSIP/1")], [S.Queue(name="sales")], [S.Channel(unique_id="1.1")])
    state.queues_encoded(NOW)
    state.apply(change_set(1, upsert_operator("billing", "PJSIP/9"), replace_all=True))
    assert [o.queue_name for o in state.operators()] == ["billing"]
    assert state.counts() == (1, 0, 0)
    assert state.queues_encoded(NOW) == []


def test_an_updated_row_keeps_its_place_and_a_new_one_takes_its_own() -> None:
    rows: Rows[S.Queue, bytes] = Rows()
    rows.put("b", S.Queue(name="b"), b"b1")
    assert rows.order() == ["b"]
    rows.put("a", S.Queue(name="a"), b"a1")
    assert rows.order() == ["a", "b"]
    rows.put("b", S.Queue(name="b", strategy="ringall"), b"b2")
    assert rows.order() == ["a", "b"]
    assert [q.strategy for q in rows.ordered()] == ["", "ringall"]
    assert rows.encoded == {"a": b"a1", "b": b"b2"}


def test_cleared_rows_have_no_order_left() -> None:
    rows: Rows[S.Queue, bytes] = Rows()
    rows.put("a", S.Queue(name="a"), b"a")
    assert rows.order() == ["a"]
    rows.clear()
    assert (rows.order(), rows.messages, rows.encoded) == ([], {}, {})


def test_removing_an_unknown_row_changes_nothing() -> None:
    rows: Rows[S.Queue, bytes] = Rows()
    rows.put("a", S.Queue(name="a"), b"a")
    rows.remove("zz")
    assert (rows.order(), rows.encoded) == (["a"], {"a": b"a"})
