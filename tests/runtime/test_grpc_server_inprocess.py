"""GrpcServer used in-process (as service tests do): start, serve, and a drain that ends long streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import ANY_LOOPBACK_PORT
from devsupport.waiting import wait_until
from runtime.auth import Scope
from runtime.grpc_server import GrpcServer, GrpcService, shutdown_event
from runtime.grpc_types import MethodHandler

SERVICE = "test.runtime.v1.Feed"
SCOPES = {f"/{SERVICE}/Follow": Scope.READ}


async def follow(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    """A long-lived stream that ends itself when the server drains."""
    stop = shutdown_event()
    yield b"first"
    await stop.wait()
    yield b"bye"


def register(server: grpc.aio.Server) -> None:
    handlers: dict[str, MethodHandler] = {"Follow": grpc.unary_stream_rpc_method_handler(follow)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


# A grace far longer than the tests' own timeout: a stop that waited it out instead of ending the
# streams would fail the test by its timeout, with no wall-clock assertion to flake under load.
LONG_GRACE_S = 600.0


async def test_drain_ends_long_streams_instead_of_waiting_out_the_grace() -> None:
    hooks: list[str] = []

    async def hook() -> None:
        hooks.append("closed")

    server = GrpcServer(
        GrpcService(
            name="feed",
            address=ANY_LOOPBACK_PORT,
            register=register,
            service_names=[SERVICE],
            scopes=SCOPES,
            shutdown_hooks=[hook],
        ),
        authenticator=authenticator_for_tests(),
        grace_seconds=LONG_GRACE_S,
    )
    address = f"127.0.0.1:{await server.start()}"
    async with aio_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        follow: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(f"/{SERVICE}/Follow")
        stream = follow(b"", timeout=10)
        assert await stream.read() == b"first"
        stopping = asyncio.create_task(server.stop())
        assert await stream.read() == b"bye"
        assert await stream.code() is grpc.StatusCode.OK
        await stopping
    assert hooks == ["closed"]
    assert server.health.serving is True  # the checks passed; the drain alone turned it off
    reply_after = await server.health.servicer.Check(health_pb2.HealthCheckRequest(service=SERVICE), None)
    assert reply_after.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_drain_ends_health_watch_streams_after_sending_not_serving() -> None:
    server = GrpcServer(
        GrpcService(name="feed", address=ANY_LOOPBACK_PORT, register=register, service_names=[SERVICE], scopes=SCOPES),
        authenticator=authenticator_for_tests(),
        grace_seconds=LONG_GRACE_S,
    )
    address = f"127.0.0.1:{await server.start()}"
    async with aio_channel(address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.create_task(server.stop())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await watch.read() is grpc.aio.EOF
        await stopping


async def test_calls_past_the_concurrency_cap_are_refused_with_resource_exhausted() -> None:
    server = GrpcServer(
        GrpcService(name="feed", address=ANY_LOOPBACK_PORT, register=register, service_names=[SERVICE], scopes=SCOPES),
        authenticator=authenticator_for_tests(),
        max_concurrent_rpcs=2,
    )
    address = f"127.0.0.1:{await server.start()}"
    try:
        async with aio_channel(address) as channel:
            follow_call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(f"/{SERVICE}/Follow")
            held = [follow_call(b"", timeout=10) for _ in range(2)]
            for stream in held:
                assert await stream.read() == b"first"
            refused = follow_call(b"", timeout=10)
            assert await refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            for stream in held:
                stream.cancel()

            async def admitted() -> bool:
                again = follow_call(b"", timeout=10)
                try:
                    return await again.read() == b"first"
                except grpc.aio.AioRpcError:
                    return False
                finally:
                    again.cancel()

            await wait_until(admitted, within=10, what="a call admitted once the held ones ended")
    finally:
        await server.stop()
