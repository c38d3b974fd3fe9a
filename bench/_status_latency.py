"""Latencies of the status service as one client sees them: GetSnapshot beside its Redis anchor
and the bare gRPC floor, GetSnapshot from the database fallback, and ingest → WatchSnapshot."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import redis
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from bench._live_status_procs import module_process
from bench._redis_anchor import Timing, interleaved_timings, raw_read
from bench._status_service import SNAPSHOT_METHOD
from devsupport.auth import AUTH_METADATA, aio_channel, sync_channel
from devsupport.ports import free_port
from devsupport.status_batches import batch, op_up
from devsupport.streams import next_message

EVENTS_PER_SECOND = 500
WATCH_SECONDS = 4.0
REQUEST = status_pb2.GetSnapshotRequest().SerializeToString()


@contextmanager
def grpc_floor(answer: bytes, *, layers: bool = False) -> Iterator[tuple[str, int]]:
    """A bare grpc.aio server answering GetSnapshot with ``answer`` (bench/_grpc_floor.py), or
    with ``layers`` the same behind the services' server stack: its address and pid."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="sb-floor-", suffix=".bin") as file:
        file.write(answer)
        file.flush()
        args = ["--port", str(port), "--method", SNAPSHOT_METHOD, "--answer", file.name]
        with module_process(
            "bench._grpc_floor", *args, *(["--layers"] if layers else []), ready_text="ready"
        ) as process:
            yield f"127.0.0.1:{port}", process.pid


def snapshot_reads(
    address: str, server_pid: int, redis_url: str, operators: int, seconds: float = 3.0
) -> dict[str, Timing]:
    """GetSnapshot, the raw Redis read of the same rows (bench/_redis_anchor.py), the bare gRPC
    floor answering the same bytes, that answer behind our server stack and the bare floor
    answering nothing (bench/_grpc_floor.py: what one call costs whatever its size), timed in
    alternating rounds, ``seconds`` each: ``"GetSnapshot"``, ``"redis"``, ``"floor"``,
    ``"stack"``, ``"empty"``.

    Both clients are as plain as their libraries allow, so that the figures compare the servers:
    redis-py's pipeline leaves each row as the serialized bytes Redis holds, and the blocking gRPC
    stub leaves the answer as the serialized ``Snapshot`` it received (each side's own parse would
    follow either way). The credential goes as call metadata, not through a Python interceptor.
    The answer is checked once before the clock starts."""
    with (
        grpc.insecure_channel(address) as channel,
        redis.Redis.from_url(redis_url) as client,
    ):
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(SNAPSHOT_METHOD)
        answer = call(REQUEST, timeout=5, metadata=AUTH_METADATA)
        got = len(status_pb2.Snapshot.FromString(answer).operators)
        if got != operators:
            raise AssertionError(f"GetSnapshot answered {got} operators, not {operators}")
        redis_pid = int(client.info("server")["process_id"])
        with (
            grpc_floor(answer) as (floor_address, floor_pid),
            grpc_floor(answer, layers=True) as (stack_address, stack_pid),
            grpc_floor(b"") as (empty_address, empty_pid),
            grpc.insecure_channel(floor_address) as floor_channel,
            grpc.insecure_channel(stack_address) as stack_channel,
            grpc.insecure_channel(empty_address) as empty_channel,
        ):
            bare: grpc.UnaryUnaryMultiCallable[bytes, bytes] = floor_channel.unary_unary(SNAPSHOT_METHOD)
            stack: grpc.UnaryUnaryMultiCallable[bytes, bytes] = stack_channel.unary_unary(SNAPSHOT_METHOD)
            empty: grpc.UnaryUnaryMultiCallable[bytes, bytes] = empty_channel.unary_unary(SNAPSHOT_METHOD)
            for floor, expected in ((bare, answer), (stack, answer), (empty, b"")):
                if floor(REQUEST, timeout=5, metadata=AUTH_METADATA) != expected:
                    raise AssertionError("a gRPC floor does not answer the bytes it was given")
            reads = {
                "GetSnapshot": lambda: call(REQUEST, timeout=5, metadata=AUTH_METADATA),
                "redis": lambda: raw_read(client),
                "floor": lambda: bare(REQUEST, timeout=5, metadata=AUTH_METADATA),
                "stack": lambda: stack(REQUEST, timeout=5, metadata=AUTH_METADATA),
                "empty": lambda: empty(REQUEST, timeout=5, metadata=AUTH_METADATA),
            }
            servers = {
                "GetSnapshot": [server_pid],
                "redis": [redis_pid],
                "floor": [floor_pid],
                "stack": [stack_pid],
                "empty": [empty_pid],
            }
            return interleaved_timings(reads, seconds=len(reads) * seconds, servers=servers)


def database_fallback_latency(address: str, seconds: float = 2.0) -> tuple[list[float], int]:
    with sync_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        first = stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)
        assert first.source == status_pb2.SOURCE_DATABASE, first.source
        samples: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)
            samples.append((time.perf_counter() - started) * 1000)
    return samples, len(first.operators)


async def watch_latency(address: str, token: int, operators: int, queues: int) -> list[float]:
    """ms from each single-change batch's ``emitted_at`` (stamped when sent into Ingest, at
    :data:`EVENTS_PER_SECOND`) until the change arrives on a WatchSnapshot stream."""
    async with aio_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        watch = stub.WatchSnapshot(status_pb2.WatchSnapshotRequest())
        first = await next_message(watch)
        assert first.WhichOneof("event") == "snapshot"
        total = int(EVENTS_PER_SECOND * WATCH_SECONDS)
        latencies: list[float] = []

        async def receive() -> None:
            while len(latencies) < total:
                message = await next_message(watch)
                if message.WhichOneof("event") == "changes":
                    latencies.append((time.time() - message.changes.emitted_at) * 1000)

        async def batches() -> Any:
            started = time.perf_counter()
            for i in range(total):
                delay = started + i / EVENTS_PER_SECOND - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                member = i % operators  # an operator of the center, in its own queue (devsupport center())
                change = op_up(f"queue-{member % queues:02d}", f"PJSIP/{1000 + member}", calls_taken=i)
                yield batch(change, sequence=i + 1, token=token)  # emitted_at = now

        receiver = asyncio.create_task(receive())
        async for _ack in stub.Ingest(batches()):
            pass
        async with asyncio.timeout(10):
            await receiver
        watch.cancel()
    return latencies
