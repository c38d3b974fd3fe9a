"""bench/status_bench.py and its parts: the gRPC floor server answers the bytes it was given (bare,
or behind the services' server stack),
calls are timed with their CPU on both sides, and GetSnapshot is judged against the raw Redis
read only at the target size (tiny figures; no timings judged)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._live_status_procs import module_process
from bench._redis_anchor import Timing, interleaved_timings
from bench._status_service import SNAPSHOT_METHOD
from bench.run import validate
from bench.status_bench import read_rows
from devsupport.auth import AUTH_METADATA
from devsupport.ports import free_port


def floor_server(tmp_path: Path, *flags: str) -> Iterator[str]:
    answer = tmp_path / "answer.bin"
    answer.write_bytes(b"\x00snapshot bytes\xff" * 100)
    port = free_port()
    args = ["--port", str(port), "--method", SNAPSHOT_METHOD, "--answer", str(answer), *flags]
    with module_process("bench._grpc_floor", *args, ready_text="ready", timeout=60):
        yield f"127.0.0.1:{port}"


@pytest.fixture
def floor(tmp_path: Path) -> Iterator[str]:
    yield from floor_server(tmp_path)


@pytest.fixture
def stacked_floor(tmp_path: Path) -> Iterator[str]:
    yield from floor_server(tmp_path, "--layers")


def test_the_grpc_floor_answers_its_method_with_the_bytes_it_was_given(floor: str) -> None:
    with grpc.insecure_channel(floor) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(SNAPSHOT_METHOD)
        assert call(b"", timeout=10) == b"\x00snapshot bytes\xff" * 100


def test_the_grpc_floor_knows_no_other_method(floor: str) -> None:
    with grpc.insecure_channel(floor) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/switchboard.x.v1.X/Y")
        with pytest.raises(grpc.RpcError) as refused:
            call(b"", timeout=10)
    assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_the_stacked_floor_answers_only_through_the_services_layers(stacked_floor: str) -> None:
    with grpc.insecure_channel(stacked_floor) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(SNAPSHOT_METHOD)
        assert call(b"", timeout=10, metadata=AUTH_METADATA) == b"\x00snapshot bytes\xff" * 100
        with pytest.raises(grpc.RpcError) as refused:
            call(b"", timeout=10)  # no credential: the authentication layer is there
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING  # and so is the rest of GrpcServer


def test_each_call_is_timed_with_its_client_and_server_cpu() -> None:
    def busy() -> None:
        sum(range(1_000_000))  # a fixed amount of CPU, however busy the machine is

    # This process stands in for the server: its CPU shows on both sides. seconds=0: one call
    # per round.
    timings = interleaved_timings(
        {"busy": busy, "idle": lambda: None}, seconds=0.0, rounds=3, warm_up=0, servers={"busy": [os.getpid()]}
    )
    busy_timing, idle = timings["busy"], timings["idle"]
    assert [len(busy_timing.latencies), len(idle.latencies)] == [3, 3]
    assert busy_timing.client_cpu_seconds > 0
    # /proc counts in 10 ms ticks, and counts this process's other threads too.
    assert busy_timing.server_cpu_seconds >= busy_timing.client_cpu_seconds - 0.03
    assert idle.server_cpu_seconds == 0.0  # no server given
    assert busy_timing.client_cpu_us() > idle.client_cpu_us()


def timing(ms: float, client_cpu_s: float = 0.001, server_cpu_s: float = 0.002) -> Timing:
    return Timing([ms] * 10, client_cpu_s, server_cpu_s)


@pytest.mark.parametrize(("targeted", "target"), [(True, "<= 1 (≤ anchor)"), (False, "info")])
def test_getsnapshot_is_judged_against_the_redis_read_at_the_target_size_only(targeted: bool, target: str) -> None:
    reads = {
        "GetSnapshot": timing(0.4),
        "redis": timing(0.2),
        "floor": timing(0.3),
        "stack": timing(0.35),
        "empty": timing(0.25),
    }
    rows = {r.name.strip(): r for r in validate("status", list(read_rows(reads, "200 ops", targeted)))}
    judged = rows["status GetSnapshot p50 / raw Redis read p50 (200 ops)"]
    assert (judged.value, judged.target) == (2.0, target)
    assert rows["floor p99 / raw Redis read p99 (200 ops)"].value == 1.5
    assert rows["floor p99 / raw Redis read p99 (200 ops)"].target == "info"
    stacked = rows["floor behind our server stack p50 / raw Redis read p50 (200 ops)"]
    assert (stacked.value, stacked.target) == (1.75, "info")
    empty = rows["floor with an empty answer p99 / raw Redis read p99 (200 ops)"]
    assert (empty.value, empty.target) == (1.25, "info")
    cpu = rows["CPU per call, GetSnapshot (200 ops)"]
    assert cpu.value == 300.0  # (1 ms client + 2 ms server) over 10 calls
    assert cpu.unit == "µs (server 200 + client 100)"
