"""The real services the fuzzers aim at (status and queue admin in-process on real Redis and
SQLite, health-only loopback servers for the rest, and the gateway in front of them), and the
descriptor-driven gRPC fuzzing every fuzz test runs (:func:`fuzz`)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from devsupport.auth import authenticator_for_tests, sync_channel
from devsupport.ports import free_port, on_any_port
from gateway.settings import BACKEND_NAMES
from runtime.grpc_server import GrpcServer, GrpcService
from services.ami_ingest.__main__ import grpc_service as ingest_grpc_service
from services.ami_ingest.app import IngestApp
from services.ami_ingest.settings import AmiIngestSettings
from services.media.app import create_app as create_media_app
from services.media.app import prepare_database
from services.media.settings import MediaSettings
from services.notify.app import NotifyApp
from services.notify.settings import NotifySettings
from services.status.app import create_app as create_status_app
from tests.fuzz.protobuf_strategies import messages
from tests.gateway.fake_status import GrpcBackend, start_backend
from tests.queue_admin.harness import AdminServer, start_admin_server, stop_admin_server
from tests.status.harness import settings_for

EXAMPLES_PER_METHOD = 25
CRASHES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
REAL = ("status", "queue_admin")
"""Backends served for real here; media, notify and ami_ingest RPCs have their own fuzz test
(test_grpc_fuzz_edge_services), their HTTP routes are not fuzzed from the OpenAPI schema yet."""


@dataclass
class RealBackends:
    addresses: dict[str, str]
    status_server: GrpcServer
    admin: AdminServer
    others: list[GrpcBackend]


@asynccontextmanager
async def real_backends(redis_url: str, data_dir: Path) -> AsyncIterator[RealBackends]:
    status_app = await create_status_app(settings_for(redis_url, f"sqlite+aiosqlite:///{data_dir / 'status.db'}"))
    await status_app.start()
    status_server = GrpcServer(
        on_any_port(status_app.grpc_service()),
        authenticator=authenticator_for_tests(),
        grace_seconds=0.2,
        health_interval_seconds=0.2,
    )
    status_port = await status_server.start()
    admin = await start_admin_server(redis_url, data_dir)
    others = {name: await start_backend(None) for name in BACKEND_NAMES if name not in REAL}
    addresses = {name: backend.address for name, backend in others.items()}
    addresses |= {"status": f"127.0.0.1:{status_port}", "queue_admin": admin.address}
    try:
        yield RealBackends(addresses, status_server, admin, list(others.values()))
    finally:
        for backend in others.values():
            await backend.stop()
        await stop_admin_server(admin)
        await status_server.stop()


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


def fuzz(addresses: dict[str, str], services: dict[str, str]) -> tuple[int, list[str]]:
    """Every method of each ``services`` (backend name -> gRPC service) fuzzed at ``addresses``:
    (requests sent, crashes seen)."""
    pool = descriptor_pool.Default()
    ran = 0
    crashes: list[str] = []
    for backend, service_name in services.items():
        with sync_channel(addresses[backend]) as channel:
            for method in pool.FindServiceByName(service_name).methods:
                ran += _fuzz_method(channel, method, crashes)
    return ran, crashes


@contextlib.asynccontextmanager
async def serving(service: GrpcService) -> AsyncIterator[str]:
    server = GrpcServer(
        on_any_port(service), authenticator=authenticator_for_tests(), grace_seconds=0.2, health_interval_seconds=0.2
    )
    port = await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def edge_services(redis_url: str, data_dir: Path) -> AsyncIterator[dict[str, str]]:
    # The servers bind free ports as they start (``serving``): no *_ADDR of their own here.
    media_settings = MediaSettings(redis_url=redis_url, data_dir=data_dir)
    await prepare_database(media_settings)
    media = await create_media_app(media_settings)
    notify = await NotifyApp.create(
        NotifySettings(
            redis_url=redis_url,
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'notify.db'}",
        )
    )
    ingest_settings = AmiIngestSettings(
        redis_url=redis_url,
        status_addr=f"127.0.0.1:{free_port()}",  # nothing there: batches wait, as in an outage
        ami_port=free_port(),  # no Asterisk either
        ami_username="fuzz",
        ami_secret=SecretStr("fuzz-secret"),
    )
    ingest = IngestApp(ingest_settings)
    await ingest.start()
    try:
        async with (
            serving(dataclasses.replace(media.grpc_service(), shutdown_hooks=())) as media_address,
            serving(notify.grpc_service()) as notify_address,
            serving(ingest_grpc_service(ingest, ingest_settings)) as ingest_address,
        ):
            yield {"media": media_address, "notify": notify_address, "ami_ingest": ingest_address}
    finally:
        await media.close()
