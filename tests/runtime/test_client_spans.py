"""The client span of a call between processes is the one opentelemetry-instrumentation-grpc makes.

:mod:`runtime.grpc_client_calls` replaces the library's aio client interceptors plus the bearer
interceptor (the pair every internal channel ran) with one interceptor per call kind, for speed;
each call below goes through both, and the spans and the metadata the server receives must
agree in everything but ids and times.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from runtime.auth import bearer_interceptors, bearer_metadata
from runtime.auth.grpc_client import _GRPC_CHANNELS
from runtime.grpc_client_calls import UnaryCaller, client_interceptors

SERVICE = "test.client_spans.v1.Probe"
TOKEN = "s3cret-token"
received: list[dict[str, str]] = []
"""Each call's metadata as the server got it (``traceparent``, ``authorization``)."""


def _keep(context: grpc.aio.ServicerContext) -> None:
    metadata = context.invocation_metadata() or ()
    received.append({key: str(value) for key, value in metadata if key in ("traceparent", "authorization")})


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    _keep(context)
    return request


async def invalid(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    _keep(context)
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name: must not be empty")


async def gather(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    _keep(context)
    return b"".join([request async for request in requests])


async def count(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    _keep(context)
    for i in range(3):
        yield str(i).encode()


async def broken(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    _keep(context)
    yield b"first"
    await context.abort(grpc.StatusCode.UNAVAILABLE, "the backend went away")


async def chat(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    _keep(context)
    async for request in requests:
        yield request


@pytest.fixture
async def address() -> AsyncIterator[str]:
    server = grpc.aio.server()
    handlers: dict[str, grpc.RpcMethodHandler] = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Invalid": grpc.unary_unary_rpc_method_handler(invalid),
        "Gather": grpc.stream_unary_rpc_method_handler(gather),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Broken": grpc.unary_stream_rpc_method_handler(broken),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


def _library(provider: TracerProvider, token: str | None) -> list[Any]:
    return [*aio_client_interceptors(tracer_provider=provider), *bearer_interceptors(token)]


def _ours(provider: TracerProvider, token: str | None) -> list[Any]:
    return client_interceptors(bearer_metadata(token) if token else (), tracer_provider=provider)


async def _requests() -> AsyncIterator[bytes]:
    for part in (b"a", b"b"):
        yield part


async def _call(channel: Any, kind: str, method: str, metadata: Any) -> Any:
    path = f"/{SERVICE}/{method}"
    try:
        if kind == "unary_unary":
            return await channel.unary_unary(path)(b"hi", metadata=metadata, timeout=5)
        if kind == "stream_unary":
            return await channel.stream_unary(path)(_requests(), metadata=metadata, timeout=5)
        if kind == "unary_stream":
            return [reply async for reply in channel.unary_stream(path)(b"", metadata=metadata, timeout=5)]
        return [reply async for reply in channel.stream_stream(path)(_requests(), metadata=metadata, timeout=5)]
    except grpc.aio.AioRpcError as error:
        return error.code()


async def _run(
    interceptors: Callable[[TracerProvider, str | None], list[Any]],
    address: str,
    call: tuple[str, str],
    *,
    token: str | None = TOKEN,
    metadata: Any = None,
    suppressed: bool = False,
) -> tuple[Any, list[ReadableSpan], dict[str, str]]:
    """The call's result, its finished spans (the caller's own span last) and the server's metadata."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    received.clear()
    async with _GRPC_CHANNELS.insecure_channel(address, interceptors=interceptors(provider, token)) as channel:
        with provider.get_tracer("test").start_as_current_span("caller"):
            if suppressed:
                with suppress_instrumentation():
                    result = await _call(channel, *call, metadata)
            else:
                result = await _call(channel, *call, metadata)
    [seen] = received
    return result, list(exporter.get_finished_spans()), seen


def _traceparent_of(span: ReadableSpan) -> str:
    """The part of a ``traceparent`` naming ``span`` as the parent (the flags follow)."""
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-"


def _comparable(spans: list[ReadableSpan], seen: dict[str, str]) -> list[dict[str, Any]]:
    """The spans in a form that is equal across runs: parents by name, the sent traceparent by
    the name of the span it names."""
    names = {span.context.span_id: span.name for span in spans}
    caller = spans[-1]
    sent = seen.get("traceparent")
    return [
        {
            "name": span.name,
            "kind": span.kind,
            "attributes": dict(span.attributes or {}),
            "status": (span.status.status_code, span.status.description),
            "parent": None if span.parent is None else names.get(span.parent.span_id),
            "same trace": span.context.trace_id == caller.context.trace_id,
            "events": [(event.name, dict(event.attributes or {}).get("exception.type")) for event in span.events],
            "scope": (span.instrumentation_scope.name, span.instrumentation_scope.version,
                      span.instrumentation_scope.schema_url) if span.instrumentation_scope else None,
            "sent as parent": sent is not None and sent.startswith(_traceparent_of(span)),
        }
        for span in spans
    ]  # fmt: skip


CALLS = [
    ("unary_unary", "Echo"),
    ("unary_unary", "Invalid"),
    ("stream_unary", "Gather"),
    ("unary_stream", "Count"),
    ("unary_stream", "Broken"),
    ("stream_stream", "Chat"),
]


@pytest.mark.parametrize("call", CALLS, ids=[method for _, method in CALLS])
async def test_a_call_gets_the_librarys_client_span_and_the_bearer_token(address: str, call: tuple[str, str]) -> None:
    result, spans, seen = await _run(_ours, address, call)
    expected_result, expected_spans, expected_seen = await _run(_library, address, call)
    assert result == expected_result
    assert _comparable(spans, seen) == _comparable(expected_spans, expected_seen)
    [client, _] = spans
    assert client.kind is SpanKind.CLIENT
    assert client.name == f"/{SERVICE}/{call[1]}"
    assert seen["authorization"] == f"Bearer {TOKEN}"
    assert seen["traceparent"].startswith(_traceparent_of(client))


async def test_an_error_status_is_the_spans_status_with_its_details(address: str) -> None:
    result, spans, _ = await _run(_ours, address, ("unary_unary", "Invalid"))
    assert result is grpc.StatusCode.INVALID_ARGUMENT
    client = spans[0]
    assert client.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert client.status.status_code is trace.StatusCode.ERROR
    assert client.status.description == "name: must not be empty"


@pytest.mark.parametrize("interceptors", [_ours, _library], ids=["ours", "library"])
async def test_suppressed_instrumentation_sends_the_token_without_a_span_or_a_traceparent(
    address: str, interceptors: Callable[[TracerProvider, str | None], list[Any]]
) -> None:
    _, spans, seen = await _run(interceptors, address, ("unary_unary", "Echo"), suppressed=True)
    assert [span.name for span in spans] == ["caller"]
    assert seen == {"authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("interceptors", [_ours, _library], ids=["ours", "library"])
async def test_an_explicit_credential_wins_and_no_token_sends_none(
    address: str, interceptors: Callable[[TracerProvider, str | None], list[Any]]
) -> None:
    _, _, seen = await _run(interceptors, address, ("unary_unary", "Echo"), metadata=(("authorization", "Bearer own"),))
    assert seen["authorization"] == "Bearer own"
    _, _, seen = await _run(interceptors, address, ("unary_unary", "Echo"), token=None)
    assert "authorization" not in seen
    assert "traceparent" in seen


async def test_an_internal_channel_runs_only_the_one_interceptor_even_when_grpc_aio_is_instrumented() -> None:
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient

    from runtime.auth import internal_channel
    from runtime.config import CommonSettings

    instrumentor = GrpcAioInstrumentorClient()
    already = instrumentor.is_instrumented_by_opentelemetry
    if not already:
        instrumentor.instrument()
    try:
        settings = CommonSettings(auth_internal_token=SecretStr(secrets.token_hex(8)))
        channel: Any = internal_channel("127.0.0.1:1", settings)
        kinds = [type(interceptor).__module__ for interceptor in channel._unary_unary_interceptors]
        await channel.close()
    finally:
        if not already:
            instrumentor.uninstrument()
    assert kinds == ["runtime.grpc_client_calls"]


async def _run_direct(
    address: str, method: str, *, token: str | None = TOKEN, suppressed: bool = False
) -> tuple[Any, list[ReadableSpan], dict[str, str]]:
    """:func:`_run` of a unary-unary call made by a :class:`UnaryCaller` on a channel without interceptors."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    received.clear()
    caller = UnaryCaller(bearer_metadata(token) if token else (), tracer_provider=provider)
    path = f"/{SERVICE}/{method}"
    async with _GRPC_CHANNELS.insecure_channel(address) as channel:
        with provider.get_tracer("test").start_as_current_span("caller"):
            try:
                if suppressed:
                    with suppress_instrumentation():
                        result = await caller(path, channel.unary_unary(path), b"hi", 5)
                else:
                    result = await caller(path, channel.unary_unary(path), b"hi", 5)
            except grpc.aio.AioRpcError as error:
                result = error.code()
    [seen] = received
    return result, list(exporter.get_finished_spans()), seen


@pytest.mark.parametrize("method", ["Echo", "Invalid"])
async def test_a_unary_caller_makes_the_interceptors_span_and_sends_their_metadata(address: str, method: str) -> None:
    result, spans, seen = await _run_direct(address, method)
    expected_result, expected_spans, expected_seen = await _run(_library, address, ("unary_unary", method))
    assert result == expected_result
    assert _comparable(spans, seen) == _comparable(expected_spans, expected_seen)
    assert seen["authorization"] == f"Bearer {TOKEN}"
    assert seen["traceparent"].startswith(_traceparent_of(spans[0]))


async def test_a_unary_caller_under_suppressed_instrumentation_sends_the_token_alone(address: str) -> None:
    _, spans, seen = await _run_direct(address, "Echo", suppressed=True)
    assert [span.name for span in spans] == ["caller"]
    assert seen == {"authorization": f"Bearer {TOKEN}"}
    _, _, seen = await _run_direct(address, "Echo", token=None)
    assert "authorization" not in seen
    assert "traceparent" in seen
