"""GetSnapshot replies on the gateway's gRPC path: the operators and channels of a reply that
begins with the previous replies' rows are taken as they were, and every read is the JSON of the
reply's full parse, byte for byte."""

from __future__ import annotations

from typing import Any

import orjson
from switchboard.status.v1 import status_pb2 as S

from devsupport.status_batches import center_rows
from gateway.snapshot_replies import SnapshotReplies
from gateway.status_json import channel_json, operator_json
from gateway.status_reads import RowJsonCache
from services.status.domain.state import LiveState
from tests.gateway.fake_status import operator

NOW = 1_700_000_100.0


def _rows() -> tuple[list[S.Operator], list[S.Queue], list[S.Channel]]:
    return center_rows(30, 4, 6)


def _written(operators: list[S.Operator], queues: list[S.Queue], channels: list[S.Channel], now: float) -> bytes:
    """The snapshot as the status service writes it (operators, channels, revision, queues, time)."""
    state = LiveState.from_messages(operators, queues, channels, revision=7, last_ingest_at=NOW - 5)
    return state.snapshot_bytes(now=now, stale=False)


def _replies() -> SnapshotReplies:
    return SnapshotReplies(RowJsonCache(S.Operator, operator_json), RowJsonCache(S.Channel, channel_json))


def _read_as_full_parse(replies: SnapshotReplies, wire: bytes) -> Any:
    """Read ``wire``; assert the JSON and the other fields are the full parse's; the reply read."""
    reply, operators, channels = replies.read(wire)
    full = S.Snapshot.FromString(wire)
    assert b"".join(operators) == orjson.dumps([operator_json(row) for row in full.operators])
    assert b"".join(channels) == orjson.dumps([channel_json(row) for row in full.channels])
    assert [S.Queue.FromString(row) for row in reply.queues] == list(full.queues)
    assert (reply.timestamp, reply.source, reply.stale, reply.revision, reply.last_ingest_at) == (
        full.timestamp, full.source, full.stale, full.revision, full.last_ingest_at,
    )  # fmt: skip
    return reply


def test_unchanged_rows_are_taken_as_they_were_while_the_queues_and_the_time_move_on() -> None:
    operators, queues, channels = _rows()
    replies = _replies()
    parsed = []
    for tick in range(5):  # a queue's longest wait, and the time of the answer, change every read
        reply = _read_as_full_parse(replies, _written(operators, queues, channels, NOW + tick))
        parsed.append(len(reply.operators))
    # Parsed whole twice (the rows seen again the second time), then only past the known rows.
    assert parsed == [len(operators), len(operators), 0, 0, 0]


def test_a_changed_removed_or_added_row_is_read_again() -> None:
    operators, queues, channels = _rows()
    changed = [operator(operators[3].queue_name, operators[3].member_id, status=S.MEMBER_STATUS_IN_USE)]
    states = [
        (operators, queues, channels),
        (operators[:3] + changed + operators[4:], queues, channels),
        (operators[1:], queues, channels),
        (operators, queues, channels[:-1]),
        ([*operators, operator("new", "PJSIP/9")], queues, channels),
        ([], queues, []),
        (operators, [], channels),
    ]
    replies = _replies()
    for state in states:
        for tick in range(3):  # each state read three times: known after the second read
            _read_as_full_parse(replies, _written(*state, NOW + tick))


def test_a_reply_with_rows_past_the_known_ones_is_parsed_whole() -> None:
    operators, queues, channels = _rows()
    replies = _replies()
    wire = _written(operators, queues, channels, NOW)
    for _ in range(3):
        _read_as_full_parse(replies, wire)
    extra = S.Snapshot(operators=[operator("late", "PJSIP/77")], channels=channels[:1]).SerializeToString()
    reply = _read_as_full_parse(replies, wire + extra)  # begins with the known rows: more follow
    assert len(reply.operators) == len(operators) + 1


def test_fields_in_another_order_are_read_whole_every_time() -> None:
    operators, queues, channels = _rows()
    replies = _replies()
    for tick in range(4):  # the generated serializer's order: operators, queues, channels, ...
        wire = S.Snapshot.FromString(_written(operators, queues, channels, NOW + tick)).SerializeToString()
        assert len(_read_as_full_parse(replies, wire).operators) == len(operators)
