"""The gRPC server span of each call: the caller's trace continued, rpc attributes, status codes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import cast

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from devsupport.auth import aio_channel
from devsupport.waiting import wait_until
from runtime import telemetry
from runtime.errors import InvalidArgument
from runtime.grpc_layers import HandlerLayer, LayeredServer
from runtime.grpc_types import MethodHandler
from runtime.interceptors import ServerInterceptor

SERVICE = "test.spans.v1.Probe"
seen_trace_ids: list[int] = []
seen_baggage: list[dict[str, object]] = []
addresses: dict[grpc.aio.Channel, str] = {}
"""The traced server's address, by the fixture's channel to it."""


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    seen_trace_ids.append(trace.get_current_span().get_span_context().trace_id)
    seen_baggage.append(dict(baggage.get_all()))
    return request


async def mark(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b""


async def invalid(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise InvalidArgument("name", "must not be empty")


async def crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("boom")


async def count(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for i in range(3):
        yield str(i).encode()


async def endless(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    # Nothing awaited between replies: the call waits in grpc.aio's write of each one, so the
    # caller's cancel reaches it there, outside this generator.
    while True:
        yield b"x" * 1024


@pytest.fixture(params=["layered", "interceptors"])
async def traced(request: pytest.FixtureRequest) -> AsyncIterator[tuple[grpc.aio.Channel, InMemorySpanExporter]]:
    """A server with the span and log/metrics layers, wrapped around the handlers as they are
    registered (as GrpcServer does) or run as grpc.aio interceptors: the spans are the same."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved, telemetry._provider = telemetry._provider, provider
    try:
        interceptor = telemetry.server_interceptor()
    finally:
        telemetry._provider = saved
    layers: list[HandlerLayer] = [interceptor, ServerInterceptor()]
    server = grpc.aio.server(interceptors=layers if request.param == "interceptors" else None)
    registrar = server if request.param == "interceptors" else cast(grpc.aio.Server, LayeredServer(server, layers))
    handlers: dict[str, MethodHandler] = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Mark": grpc.unary_unary_rpc_method_handler(mark),
        "Invalid": grpc.unary_unary_rpc_method_handler(invalid),
        "Crash": grpc.unary_unary_rpc_method_handler(crash),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Endless": grpc.unary_stream_rpc_method_handler(endless),
    }
    registrar.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), registrar)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = aio_channel(f"127.0.0.1:{port}")
    addresses[channel] = f"127.0.0.1:{port}"
    yield channel, exporter
    await channel.close()
    await server.stop(0)


MARK = f"/{SERVICE}/Mark"


def unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """A unary call on raw bytes (no serializers)."""
    return channel.unary_unary(method)


async def spans_before_a_mark(channel: grpc.aio.Channel, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The finished spans of the calls made so far, the ``Mark`` call's own left out.

    The server ends a span just after the reply (or the error status) has gone out, so the
    client can hear back before it ends. A call made afterwards is a barrier: by the time its
    span has ended, so has every span of the calls before it (each ends in its own call's task
    without waiting on anything, while the mark needs a whole round trip first).
    """
    assert await unary(channel, MARK)(b"", timeout=5) == b""
    await wait_until(
        lambda: any(span.name == MARK for span in exporter.get_finished_spans()), within=10, what="the mark's span"
    )
    return [span for span in exporter.get_finished_spans() if span.name != MARK]


async def only_span(channel: grpc.aio.Channel, exporter: InMemorySpanExporter) -> ReadableSpan:
    """The one finished server span of the calls made so far."""
    [span] = await spans_before_a_mark(channel, exporter)
    return span


async def test_a_call_continues_the_callers_trace_in_a_server_span(
    traced: tuple[grpc.aio.Channel, InMemorySpanExporter],
) -> None:
    channel, exporter = traced
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    metadata = (("traceparent", f"00-{trace_id}-{parent_id}-01"),)
    for _ in range(2):  # the second call goes through the cached wrapping
        exporter.clear()
        assert await unary(channel, f"/{SERVICE}/Echo")(b"hi", metadata=metadata, timeout=5) == b"hi"
        span = await only_span(channel, exporter)
        assert span.name == f"/{SERVICE}/Echo"
        assert span.kind is SpanKind.SERVER
        assert format(span.context.trace_id, "032x") == trace_id
        assert span.parent is not None
        assert format(span.parent.span_id, "016x") == parent_id
        assert seen_trace_ids[-1] == span.context.trace_id  # the handler runs inside the span
        attributes = dict(span.attributes or {})
        assert attributes["rpc.system"] == "grpc"
        assert attributes["rpc.service"] == SERVICE
        assert attributes["rpc.method"] == "Echo"
        assert attributes["rpc.grpc.status_code"] == 0
        assert attributes["net.peer.ip"] == "127.0.0.1"
        assert span.status.status_code is StatusCode.UNSET


async def test_a_client_error_is_recorded_by_code_and_a_server_fault_as_an_error(
    traced: tuple[grpc.aio.Channel, InMemorySpanExporter],
) -> None:
    channel, exporter = traced
    with pytest.raises(grpc.aio.AioRpcError):
        await unary(channel, f"/{SERVICE}/Invalid")(b"", timeout=5)
    span = await only_span(channel, exporter)
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert span.status.status_code is StatusCode.UNSET
    exporter.clear()
    with pytest.raises(grpc.aio.AioRpcError):
        await unary(channel, f"/{SERVICE}/Crash")(b"", timeout=5)
    span = await only_span(channel, exporter)
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert span.status.status_code is StatusCode.ERROR


async def test_a_stream_gets_one_span_and_health_checks_none(
    traced: tuple[grpc.aio.Channel, InMemorySpanExporter],
) -> None:
    channel, exporter = traced
    count: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(f"/{SERVICE}/Count")
    replies = [reply async for reply in count(b"", timeout=5)]
    assert replies == [b"0", b"1", b"2"]
    assert (await only_span(channel, exporter)).name == f"/{SERVICE}/Count"
    exporter.clear()
    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert await spans_before_a_mark(channel, exporter) == []


async def test_a_call_without_trace_headers_starts_a_trace_and_baggage_alone_still_arrives(
    traced: tuple[grpc.aio.Channel, InMemorySpanExporter],
) -> None:
    channel, exporter = traced
    echo_call = unary(channel, f"/{SERVICE}/Echo")
    trace_ids = []
    for _ in range(2):
        exporter.clear()
        assert await echo_call(b"hi", timeout=5) == b"hi"
        span = await only_span(channel, exporter)
        assert span.parent is None
        assert seen_baggage[-1] == {}
        trace_ids.append(span.context.trace_id)
    assert trace_ids[0] != trace_ids[1]  # each call a trace of its own
    exporter.clear()
    assert await echo_call(b"hi", metadata=(("baggage", "tenant=acme"),), timeout=5) == b"hi"
    assert seen_baggage[-1] == {"tenant": "acme"}
    assert (await only_span(channel, exporter)).parent is None


async def test_each_connection_s_calls_name_their_own_peer_port(
    traced: tuple[grpc.aio.Channel, InMemorySpanExporter],
) -> None:
    channel, exporter = traced
    target = addresses[channel]
    ports = set()
    for _ in range(2):
        async with aio_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as other:
            exporter.clear()
            assert await unary(other, f"/{SERVICE}/Echo")(b"hi", timeout=5) == b"hi"
            [span] = [s for s in await spans_before_a_mark(channel, exporter) if s.name.endswith("/Echo")]
            attributes = dict(span.attributes or {})
            assert attributes["net.peer.ip"] == "127.0.0.1"
            assert attributes["net.peer.name"] == "localhost"
            ports.add(attributes["net.peer.port"])
    assert len(ports) == 2


async def test_a_stream_its_caller_cancels_ends_its_span_cancelled_and_detaches_in_its_own_context(
    traced: tuple[grpc.aio.Channel, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    """grpc.aio leaves a stream's generator suspended when the call is cancelled in a write, and
    Python closes it later in a task of its own: a context attached across the generator's yields
    was then detached there ("Token ... was created in a different Context", logged as an error)."""
    channel, exporter = traced
    endless_stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(f"/{SERVICE}/Endless")
    call = endless_stream(b"", timeout=30)
    assert await call.read() == b"x" * 1024
    call.cancel()
    await wait_until(
        lambda: any(s.name.endswith("/Endless") for s in exporter.get_finished_spans()),
        within=30,
        what="the stream's span ended",
    )
    for span in exporter.get_finished_spans():
        assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
        assert span.status.status_code is StatusCode.UNSET
        assert not span.events  # no exception recorded: the caller went away
    assert [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")] == []
