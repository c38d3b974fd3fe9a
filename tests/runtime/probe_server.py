"""A tiny gRPC service built on runtime.grpc_server, for the runtime tests only.

``python -m tests.runtime.probe_server`` serves ``test.runtime.v1.Probe`` at ``PROBE_ADDR``
with raw-bytes methods (generic handlers, no protos):

- ``Echo(b)`` → ``b``
- ``Slow(b)`` → sleeps ``float(b)`` seconds (default 2), then answers ``b"done"``
- ``Invalid(b)`` → raises ``InvalidArgument("queue", "must not be empty")``
- ``Crash(b)`` → raises ``RuntimeError`` (a bug: INTERNAL)
- ``Count(b)`` → server stream of ``int(b)`` messages

Health checks Redis at ``REDIS_URL``. Shutdown hooks print ``hook ran`` to stdout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio

from runtime.auth import Scope
from runtime.config import Address, CommonSettings
from runtime.errors import InvalidArgument
from runtime.grpc_server import GrpcService, run_service
from runtime.grpc_types import MethodHandler
from runtime.logging import get_logger
from runtime.redis import create_redis, redis_health_check

SERVICE = "test.runtime.v1.Probe"
log = get_logger("probe")


class ProbeSettings(CommonSettings):
    probe_addr: Address = "127.0.0.1:50099"


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    log.info("echo called", size=len(request))
    return request


async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    log.info("slow started")
    await asyncio.sleep(float(request or b"2"))  # a call still in flight when SIGTERM comes
    return b"done"


async def invalid(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise InvalidArgument("queue", "must not be empty")


async def crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("secret internal state")


async def count(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for i in range(int(request or b"3")):
        yield str(i).encode()


def register(server: grpc.aio.Server) -> None:
    handlers: dict[str, MethodHandler] = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Invalid": grpc.unary_unary_rpc_method_handler(invalid),
        "Crash": grpc.unary_unary_rpc_method_handler(crash),
        "Count": grpc.unary_stream_rpc_method_handler(count),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


async def build(settings: ProbeSettings) -> GrpcService:
    redis = create_redis(settings.redis_url, connect_timeout=0.5, socket_timeout=0.5)

    async def announce() -> None:
        print("hook ran", flush=True)

    return GrpcService(
        name="probe",
        address=settings.probe_addr,
        register=register,
        service_names=[SERVICE],
        scopes={f"/{SERVICE}/{name}": Scope.READ for name in ("Echo", "Slow", "Invalid", "Crash", "Count")},
        health_checks={"redis": redis_health_check(redis)},
        shutdown_hooks=[redis.aclose, announce],
    )


if __name__ == "__main__":
    run_service("probe", ProbeSettings, build)
