"""The anchors of the status read benchmarks, measured in the same run as the reads they judge.

- :func:`raw_read`: the rows the status service keeps in Redis (:mod:`services.status.keys`),
  read with redis-py the plainest way: the three HGETALLs in one pipelined round trip, values
  left as the serialized protobuf bytes Redis holds. ``GetSnapshot`` answers from memory, so
  it should be no slower than this.
- :func:`raw_read_as_json`: that read, plus what it takes to answer the same rows as JSON:
  each value parsed, turned into the gateway's JSON object (:mod:`gateway.status_json`) and the
  whole snapshot encoded with orjson. ``/api/queue-status/snapshot`` should be no slower.

:func:`interleaved_timings` times several calls in alternating rounds, so that whatever else
loads the machine falls on each of them alike: the ratio of two figures is what is judged. It
also takes each call's CPU time, client and server side, which a busy machine hardly moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from switchboard.status.v1 import status_pb2

from bench._status_service import process_cpu_seconds
from gateway.status_json import channel_json, operator_json, queue_json
from services.status import keys

ROW_KEYS = (keys.OPERATORS, keys.QUEUES, keys.CHANNELS)


def raw_read(client: redis.Redis) -> list[dict[bytes, bytes]]:
    """Every operator, queue and channel row as Redis holds them, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for key in ROW_KEYS:
        pipe.hgetall(key)
    rows: list[dict[bytes, bytes]] = pipe.execute()
    return rows


def raw_read_as_json(client: redis.Redis) -> bytes:
    """:func:`raw_read`'s rows as one JSON snapshot body (the gateway's row objects, orjson)."""
    operators, queues, channels = raw_read(client)
    data: dict[str, Any] = {
        "operators": [operator_json(status_pb2.Operator.FromString(value)) for value in operators.values()],
        "queues": [queue_json(status_pb2.Queue.FromString(value)) for value in queues.values()],
        "channels": [channel_json(status_pb2.Channel.FromString(value)) for value in channels.values()],
    }
    return orjson.dumps({"success": True, "data": data})


@dataclass
class Timing:
    """One call's figures from :func:`interleaved_timings`."""

    latencies: list[float] = field(default_factory=list)
    """Wall time of each call, ms."""
    client_cpu_seconds: float = 0.0
    """This process's CPU time spent in the timed calls."""
    server_cpu_seconds: float = 0.0
    """CPU time of the call's server processes while it was being timed (0: none given)."""

    def client_cpu_us(self) -> float:
        return self.client_cpu_seconds / max(len(self.latencies), 1) * 1e6

    def server_cpu_us(self) -> float:
        return self.server_cpu_seconds / max(len(self.latencies), 1) * 1e6


def interleaved_timings(
    calls: Mapping[str, Callable[[], object]],
    *,
    seconds: float,
    rounds: int = 10,
    warm_up: int = 200,
    servers: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Timing]:
    """Wall time of each call in ms, by name: ``warm_up`` untimed calls of each, then ``rounds``
    rounds in which every call runs for ``seconds / rounds / len(calls)`` in turn. Also the CPU
    time per call of this process and of the call's server processes (``servers``: pids by
    name, read from /proc around each turn): unlike wall times, these hardly depend on how busy
    the machine is."""
    for call in calls.values():
        for _ in range(warm_up):
            call()
    timings = {name: Timing() for name in calls}
    slot = seconds / rounds / len(calls)
    for _ in range(rounds):
        for name, call in calls.items():
            timing = timings[name]
            pids = (servers or {}).get(name, ())
            server_before = sum(process_cpu_seconds(pid) for pid in pids)
            client_before = time.process_time()
            deadline = time.perf_counter() + slot
            while True:
                started = time.perf_counter()
                call()
                ended = time.perf_counter()
                timing.latencies.append((ended - started) * 1000)
                if ended >= deadline:
                    break
            timing.client_cpu_seconds += time.process_time() - client_before
            timing.server_cpu_seconds += sum(process_cpu_seconds(pid) for pid in pids) - server_before
    return timings


def interleaved_latencies(
    calls: Mapping[str, Callable[[], object]], *, seconds: float, rounds: int = 10, warm_up: int = 200
) -> dict[str, list[float]]:
    """The wall times (ms) of :func:`interleaved_timings`, by name."""
    timings = interleaved_timings(calls, seconds=seconds, rounds=rounds, warm_up=warm_up)
    return {name: timing.latencies for name, timing in timings.items()}


def ratio_row(name: str, measured: float, anchor: float, what: str) -> dict[str, Any]:
    """``measured / anchor`` judged against ≤ 1 (no slower than the anchor), both shown in the unit."""
    ratio = measured / anchor
    unit = f"× anchor ({measured:.3f} ms vs {what} {anchor:.3f} ms)"
    return {"name": name, "value": round(ratio, 3), "unit": unit, "target": "<= 1 (≤ anchor)", "met": ratio <= 1}
