"""bench/_redis_anchor.py: the raw Redis read of the status rows (and as JSON) against a real
Redis, calls timed in alternating rounds, and the ratio rows' shape (tiny sizes, no timings judged)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import redis
from switchboard.status.v1 import status_pb2

from bench._redis_anchor import interleaved_latencies, ratio_row, raw_read, raw_read_as_json
from bench.run import validate
from gateway.status_json import channel_json, operator_json, queue_json
from services.status import keys

OPERATOR = status_pb2.Operator(queue_name="sales", member_id="PJSIP/1001", member_name="Ann", calls_taken=3)
QUEUE = status_pb2.Queue(name="sales", strategy="ringall")
CHANNEL = status_pb2.Channel(unique_id="1700000000.1", channel_name="PJSIP/1001-00000001")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as connected:
        connected.hset(keys.OPERATORS, keys.operator_field("sales", "PJSIP/1001"), OPERATOR.SerializeToString())
        connected.hset(keys.QUEUES, "sales", QUEUE.SerializeToString())
        connected.hset(keys.CHANNELS, CHANNEL.unique_id, CHANNEL.SerializeToString())
        yield connected


def test_the_raw_read_returns_the_rows_the_status_keys_hold(client: redis.Redis) -> None:
    operators, queues, channels = raw_read(client)
    assert [status_pb2.Operator.FromString(value) for value in operators.values()] == [OPERATOR]
    assert queues == {b"sales": QUEUE.SerializeToString()}
    assert channels == {CHANNEL.unique_id.encode(): CHANNEL.SerializeToString()}


def test_the_json_anchor_encodes_the_same_rows_as_the_gateway_objects(client: redis.Redis) -> None:
    body = orjson.loads(raw_read_as_json(client))
    assert body == {
        "success": True,
        "data": {
            "operators": [operator_json(OPERATOR)],
            "queues": [queue_json(QUEUE)],
            "channels": [channel_json(CHANNEL)],
        },
    }


def test_the_calls_are_timed_in_alternating_rounds_after_their_warm_up() -> None:
    order: list[str] = []
    samples = interleaved_latencies(
        {"ours": lambda: order.append("ours"), "anchor": lambda: order.append("anchor")},
        seconds=0.0,
        rounds=3,
        warm_up=2,
    )
    assert order == ["ours", "ours", "anchor", "anchor"] + ["ours", "anchor"] * 3
    assert [len(samples["ours"]), len(samples["anchor"])] == [3, 3]
    assert all(sample >= 0 for values in samples.values() for sample in values)


@pytest.mark.parametrize(("measured", "met"), [(0.5, True), (1.0, True), (1.5, False)])
def test_a_ratio_row_is_judged_no_slower_than_its_anchor(measured: float, met: bool) -> None:
    [result] = validate("anchor", [ratio_row("GetSnapshot p99 / raw Redis read p99", measured, 1.0, "Redis")])
    assert (result.value, result.met, result.target) == (measured, met, "<= 1 (≤ anchor)")
    assert f"{measured:.3f} ms vs Redis 1.000 ms" in result.unit
