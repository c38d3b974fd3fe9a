"""Fuzz the gRPC requests of the real status and queue admin services from their descriptors
(hypothesis): every method answers each generated request with a status, never a crash
(INTERNAL, UNKNOWN, DATA_LOSS). The number of requests is printed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from devsupport.auth import sync_channel
from tests.fuzz.harness import real_backends
from tests.fuzz.protobuf_strategies import messages

EXAMPLES_PER_METHOD = 25
CRASHES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
SERVICES = {"status": "switchboard.status.v1.StatusService", "queue_admin": "switchboard.queue.v1.QueueAdmin"}


def _call(channel: grpc.Channel, method: MethodDescriptor, requests: list[Any]) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    serialize = type(requests[0]).SerializeToString
    try:
        if method.client_streaming:
            if method.server_streaming:
                both: grpc.StreamStreamMultiCallable[Any, bytes] = channel.stream_stream(
                    path, request_serializer=serialize
                )
                for _ in both(iter(requests), timeout=5):
                    pass
            else:
                upload: grpc.StreamUnaryMultiCallable[Any, bytes] = channel.stream_unary(
                    path, request_serializer=serialize
                )
                upload(iter(requests), timeout=5)
        elif method.server_streaming:
            follow: grpc.UnaryStreamMultiCallable[Any, bytes] = channel.unary_stream(path, request_serializer=serialize)
            stream = follow(requests[0], timeout=1.5)
            for _ in stream:
                break  # a live stream: its first answer (or its refusal) is what is checked
            stream.cancel()
        else:
            channel.unary_unary(path, request_serializer=serialize)(requests[0], timeout=5)
    except grpc.RpcError as error:
        code = error.code()
        return grpc.StatusCode.OK if code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED) else code
    return grpc.StatusCode.OK


def _fuzz_method(channel: grpc.Channel, method: MethodDescriptor, crashes: list[str]) -> int:
    """EXAMPLES_PER_METHOD generated calls of ``method``; returns how many ran."""
    ran = 0
    batch = st.lists(messages(method.input_type), min_size=1, max_size=3 if method.client_streaming else 1)

    @settings(
        max_examples=EXAMPLES_PER_METHOD,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(requests=batch)
    def check(requests: list[Any]) -> None:
        nonlocal ran
        ran += 1
        code = _call(channel, method, requests)
        if code in CRASHES:
            crashes.append(f"{method.full_name}({requests[0]}) -> {code.name}")

    check()
    return ran


def fuzz(addresses: dict[str, str]) -> tuple[int, list[str]]:
    pool = descriptor_pool.Default()
    ran = 0
    crashes: list[str] = []
    for backend, service_name in SERVICES.items():
        with sync_channel(addresses[backend]) as channel:
            for method in pool.FindServiceByName(service_name).methods:
                ran += _fuzz_method(channel, method, crashes)
    return ran, crashes


@pytest.mark.timeout(600)
async def test_generated_requests_never_crash_a_service(redis_url: str, tmp_path: Path) -> None:
    async with real_backends(redis_url, tmp_path) as backends:
        ran, crashes = await asyncio.to_thread(fuzz, backends.addresses)
    print(f"hypothesis/gRPC: {ran} generated requests, {len(crashes)} crashes")
    assert ran > 0
    assert crashes == []
