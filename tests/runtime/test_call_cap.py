"""GRPC_MAX_CONCURRENT_RPCS: calls past the cap are refused with RESOURCE_EXHAUSTED, counted and logged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import ANY_LOOPBACK_PORT
from devsupport.waiting import wait_until
from runtime.auth import Scope
from runtime.call_cap import CALLS_REFUSED
from runtime.errors import InvalidArgument
from runtime.grpc_server import GrpcServer, GrpcService
from runtime.grpc_types import MethodHandler
from runtime.metrics import GRPC_STARTED
from tests.runtime.test_grpc_server_inprocess import SERVICE, follow

FOLLOW, ECHO, FAIL = f"/{SERVICE}/Follow", f"/{SERVICE}/Echo", f"/{SERVICE}/Fail"
SCOPES = {FOLLOW: Scope.READ, ECHO: Scope.READ, FAIL: Scope.READ}


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise InvalidArgument("request", "is refused by this method")


def register(server: grpc.aio.Server) -> None:
    handlers: dict[str, MethodHandler] = {
        "Follow": grpc.unary_stream_rpc_method_handler(follow),
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def refused_so_far(method: str = "Follow") -> float:
    return CALLS_REFUSED.labels(SERVICE, method)._value.get()


@pytest.fixture
async def capped() -> AsyncIterator[str]:
    """A server that runs at most two calls at once."""
    server = GrpcServer(
        GrpcService(name="feed", address=ANY_LOOPBACK_PORT, register=register, service_names=[SERVICE], scopes=SCOPES),
        authenticator=authenticator_for_tests(),
        max_concurrent_rpcs=2,
        grace_seconds=0.1,
    )
    address = f"127.0.0.1:{await server.start()}"
    try:
        yield address
    finally:
        await server.stop()


async def test_each_refusal_is_counted_and_an_overload_logs_one_line_with_the_count(capped: str) -> None:
    before = refused_so_far()
    async with aio_channel(capped) as channel:
        follow: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(FOLLOW)
        held = [follow(b"", timeout=10) for _ in range(2)]
        for stream in held:
            assert await stream.read() == b"first"
        started = GRPC_STARTED.labels(SERVICE, "Follow", "server_stream")._value.get()
        with structlog.testing.capture_logs() as logs:
            codes = []
            for _ in range(3):
                refused = follow(b"", timeout=10)
                codes.append(await refused.code())
        for stream in held:
            stream.cancel()
    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
    assert refused_so_far() == before + 3
    # Refused before the layers beneath it: no call was started, traced or logged as finished.
    assert GRPC_STARTED.labels(SERVICE, "Follow", "server_stream")._value.get() == started
    assert not [line for line in logs if line["event"] == "rpc finished"]
    lines = [line for line in logs if line["event"] == "calls refused past the concurrency cap"]
    # Rate-limited: the first refusal of a quiet server is logged at once, the next ones wait their turn.
    assert len(lines) == 1
    assert lines[0]["method"] == FOLLOW
    assert lines[0]["limit"] == 2
    assert lines[0]["log_level"] == "warning"


async def test_a_method_never_called_before_is_refused_too(capped: str) -> None:
    before = refused_so_far("Echo")
    async with aio_channel(capped) as channel:
        follow_call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(FOLLOW)
        echo_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(ECHO)
        held = [follow_call(b"", timeout=10) for _ in range(2)]
        for stream in held:
            assert await stream.read() == b"first"
        codes = []
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await echo_call(b"x", timeout=10)
            codes.append(refused.value.code())
        for stream in held:
            stream.cancel()
        await wait_until(lambda: refused_so_far("Echo") == before + 2, within=5, what="both refusals counted")

        async def echoed() -> bool:
            try:
                return await echo_call(b"x", timeout=10) == b"x"
            except grpc.aio.AioRpcError:
                return False

        await wait_until(echoed, within=10, what="Echo served once the streams ended")
    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2


async def test_health_checks_are_answered_even_at_the_cap(capped: str) -> None:
    async with aio_channel(capped) as channel:
        follow: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(FOLLOW)
        held = [follow(b"", timeout=10) for _ in range(2)]
        for stream in held:
            assert await stream.read() == b"first"
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        for stream in held:
            stream.cancel()
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_unary_call_holds_its_slot_only_while_it_runs_whether_it_fails_or_not(capped: str) -> None:
    before = refused_so_far("Echo")
    async with aio_channel(capped) as channel:
        echo_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(ECHO)
        fail_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(FAIL)
        for _ in range(3):  # more calls than the cap, one after the other: each gives its slot back
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await fail_call(b"x", timeout=10)
            assert failed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert await echo_call(b"x", timeout=10) == b"x"
        # One slot left beside a held stream: a unary call still fits, a second stream does not.
        follow_call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(FOLLOW)
        held = follow_call(b"", timeout=10)
        assert await held.read() == b"first"
        assert await echo_call(b"y", timeout=10) == b"y"
        held.cancel()
    assert refused_so_far("Echo") == before
