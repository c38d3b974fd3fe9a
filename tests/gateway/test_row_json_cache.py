"""The gRPC read path's row cache: each row's JSON kept by the row's protobuf encoding."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet
from switchboard.status.v1 import status_pb2 as S

from gateway.status_json import channel_json, operator_json, queue_json
from gateway.status_reads import QueueRowJson, RowJsonCache
from tests.gateway.fake_status import operator


def _operators(count: int, calls_taken: int = 0) -> list[S.Operator]:
    return [operator("sales", f"PJSIP/{1000 + i}", calls_taken=calls_taken) for i in range(count)]


def _encoded(rows: Sequence[Message]) -> list[bytes]:
    return [row.SerializeToString() for row in rows]


def _converted(rows: Sequence[Any], to_json: Callable[[Any], dict[str, Any]]) -> bytes:
    """What the gateway answered before rows were cached: every row converted on every read."""
    return orjson.dumps([to_json(row) for row in rows])


def test_the_array_is_the_rows_converted_one_by_one() -> None:
    rows = [*_operators(3, calls_taken=4), operator("support", "PJSIP/1000", paused=True)]
    cache = RowJsonCache(S.Operator, operator_json)
    expected = _converted(rows, operator_json)
    assert cache.array(_encoded(rows)) == expected
    assert cache.array(_encoded(rows)) == expected  # the second time from the cache
    assert cache.array([]) == b"[]"


def test_the_pieces_of_an_array_join_into_it() -> None:
    cache = RowJsonCache(S.Operator, operator_json)
    for rows in ([], _operators(1), _operators(3)):
        assert b"".join(cache.chunks(_encoded(rows))) == _converted(rows, operator_json)


def test_a_changed_row_is_converted_again_and_an_unchanged_one_is_kept() -> None:
    cache = RowJsonCache(S.Operator, operator_json)
    before = _operators(2)
    cache.array(_encoded(before))
    after = [before[0], operator("sales", "PJSIP/1001", status=S.MEMBER_STATUS_IN_USE, in_call=True)]
    answer = orjson.loads(cache.array(_encoded(after)))
    assert [row["status"] for row in answer] == ["idle", "in_use"]
    assert answer == [operator_json(row) for row in after]
    assert len(cache) == 3  # the old row's entry stays until the cache is trimmed


def test_queues_and_channels_keep_their_contract_json() -> None:
    queues = [
        S.Queue(name="sales", strategy="ringall", callers=[S.Caller(channel="PJSIP/t-1", waiting_since=1_700_000_000)]),
        S.Queue(name="support", completed=3, hold_time=12),
    ]
    channels = [
        S.Channel(unique_id="1.1", channel_name="PJSIP/1", started_at=1_700_000_000),
        S.Channel(unique_id="1.2"),
    ]
    for _ in range(2):
        assert RowJsonCache(S.Queue, queue_json).array(_encoded(queues)) == _converted(queues, queue_json)
        assert RowJsonCache(S.Channel, channel_json).array(_encoded(channels)) == _converted(channels, channel_json)


def test_a_row_with_fields_the_gateway_does_not_know_gives_the_json_of_its_known_fields() -> None:
    row = operator("sales", "PJSIP/1000", calls_taken=2)
    # Field 99 (a string) and field 100 (a varint): what a newer status service might add.
    newer = row.SerializeToString() + b"\x9a\x06\x03new" + b"\xa0\x06\x07"
    parsed = S.Operator.FromString(newer)
    assert len(UnknownFieldSet(parsed)) == 2  # kept by the message, not read by operator_json
    cache = RowJsonCache(S.Operator, operator_json)
    for _ in range(2):
        answer = cache.array([newer, row.SerializeToString()])
        assert answer == _converted([parsed, row], operator_json) == _converted([row, row], operator_json)
    assert len(cache) == 2  # two encodings, each its own entry, both exact


def test_rows_that_changed_long_ago_are_forgotten() -> None:
    cache = RowJsonCache(S.Operator, operator_json)
    for calls in range(2000):  # one operator changing on every reply, 4 unchanged beside it
        rows = [*_operators(4), operator("support", "PJSIP/2000", calls_taken=calls)]
        assert orjson.loads(cache.array(_encoded(rows)))[-1]["callsTaken"] == calls
        # Twice the longest reply plus the spare rows, not one entry per change ever seen.
        assert len(cache) <= 2 * len(rows) + 1024


def test_a_reply_holding_the_last_replys_rows_converts_none_of_them_again() -> None:
    converted: list[str] = []

    def counted(op: S.Operator) -> dict[str, Any]:
        converted.append(op.member_id)
        return operator_json(op)

    rows = _operators(5)
    cache = RowJsonCache(S.Operator, counted)
    for _ in range(3):  # each reply's rows are new bytes objects, equal to the last reply's
        assert b"".join(cache.chunks(_encoded(rows))) == _converted(rows, operator_json)
    assert len(converted) == len(rows)


def test_a_reply_after_repeated_ones_answers_its_own_rows() -> None:
    cache = RowJsonCache(S.Operator, operator_json)
    before = _operators(3)
    after = [*before[:2], operator("sales", "PJSIP/1002", paused=True)]
    for rows in (before, before, before, after, [], [], before, after):
        assert cache.array(_encoded(rows)) == _converted(rows, operator_json)


def _waiting(name: str, longest_wait: float, callers: int = 2) -> S.Queue:
    waiting = [
        S.Caller(channel=f"PJSIP/t-{i}", caller_id_num="5550100", position=i + 1, waiting_since=1_700_000_000 + i)
        for i in range(callers)
    ]
    return S.Queue(
        name=name, strategy="ringall", waiting=callers, callers=waiting, completed=3, service_level_perf=85.5,
        longest_wait=longest_wait, longest_wait_ms=round(longest_wait * 1000), max=4, weight=-1,
    )  # fmt: skip


def test_a_queue_row_converted_but_for_its_wait_gives_the_contract_json() -> None:
    rows = [
        _waiting("sales", 42.0),
        _waiting("sales", 42.0004),
        _waiting("sales", 0.0),
        _waiting("support", 7.25, callers=0),
        S.Queue(name="empty"),
        S.Queue(name="odd", longest_wait=-3.5, longest_wait_ms=9),  # JSON reads the seconds field only
    ]
    convert = QueueRowJson()
    for _ in range(2):
        for row in rows:
            assert convert(row.SerializeToString()) == orjson.dumps(queue_json(row))
    assert RowJsonCache(S.Queue, queue_json, convert=QueueRowJson()).array(_encoded(rows)) == _converted(
        rows, queue_json
    )


def test_a_queue_row_whose_wait_alone_changes_is_kept_once() -> None:
    convert = QueueRowJson()
    for tick in range(50):
        row = _waiting("sales", 10.0 + tick)
        assert orjson.loads(convert(row.SerializeToString()))["longestWaitMs"] == 10_000 + 1000 * tick
    assert len(convert) == 1
    convert(_waiting("sales", 60.0, callers=3).SerializeToString())  # a caller joined: another row
    assert len(convert) == 2


def test_queue_rows_whose_callers_changed_long_ago_are_forgotten() -> None:
    convert = QueueRowJson()
    for caller_count in range(1100):  # a caller more on every read: a new row each time
        convert(_waiting("sales", 5.0, callers=caller_count % 40).SerializeToString())
        convert(_waiting(f"q{caller_count}", 5.0, callers=1).SerializeToString())
        assert len(convert) <= 1024


def test_a_row_cache_converts_queue_rows_with_its_queue_converter_from_the_first_read() -> None:
    convert = QueueRowJson()  # empty, hence falsy (len 0): it must still be the cache's converter
    cache = RowJsonCache(S.Queue, queue_json, convert=convert)
    for tick in range(3):
        rows = [_waiting("sales", 10.0 + tick)]
        assert cache.array(_encoded(rows)) == _converted(rows, queue_json)
    assert len(convert) == 1  # each read's row went through it: its wait alone changed
