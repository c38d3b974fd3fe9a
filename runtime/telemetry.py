"""OpenTelemetry tracing for every Switchboard process.

:func:`configure_telemetry` installs a global ``TracerProvider`` whose resource carries
``service.name``. Spans are always created (so ``trace_id`` appears in logs); where they are
exported (OTLP over gRPC or HTTP, the console, nowhere) follows the standard OTEL_* variables,
see :mod:`runtime.trace_export`, which also keeps background loops from beginning traces.
Sampling follows the standard ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` variables
(default ``parentbased_always_on``): for example
``OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01`` records 1 % of
new traces and follows the caller's decision otherwise. Unsampled calls still get a trace id
(logs keep ``trace_id``) and still propagate context; they just record and export nothing. It also instruments
gRPC aio *clients* (every ``grpc.aio.insecure_channel``/``secure_channel`` opened afterwards;
the channels between Switchboard processes, :func:`runtime.auth.internal_channel`, trace their
calls with :mod:`runtime.grpc_client_calls` instead), Redis and httpx. The gRPC *server* side
is instrumented by ``runtime.grpc_server`` through :func:`server_interceptor`.

Context crosses a queue by value: the producer stores :func:`inject_context` in the job, the
worker wraps the job in ``with use_context(job_carrier): ...`` (or attaches
:func:`extract_context` itself) so the job's spans continue the caller's trace::

    job = {"payload": ..., "otel": inject_context()}
    ...
    with use_context(job["otel"]), tracer.start_as_current_span("media.watermark"):
        ...

:func:`shutdown` flushes pending spans and is called by every process on exit (``run_main``):
it waits for the collector at most ``TRACE_FLUSH_SECONDS`` (default 2 s), so spans ended just
before SIGTERM still arrive, and a slow or unreachable collector never holds the exit longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import Status, StatusCode

from runtime import trace_export
from runtime.config import CommonSettings
from runtime.grpc_layers import HandlerLayer
from runtime.grpc_status import details_of, status_code_of
from runtime.grpc_types import MethodHandler
from runtime.grpc_wrap import stream_items

__all__ = [
    "configure_process_telemetry",
    "configure_telemetry",
    "extract_context",
    "flush_seconds",
    "get_tracer",
    "inject_context",
    "resource_attributes",
    "server_interceptor",
    "shutdown",
    "use_context",
]

_provider: TracerProvider | None = None
DEFAULT_FLUSH_SECONDS = 2.0
_flush_seconds = DEFAULT_FLUSH_SECONDS


def configure_telemetry(
    service_name: str,
    *,
    resource_attributes: Mapping[str, str | None] | None = None,
    processors: Sequence[SpanProcessor] = (),
    sampler: Sampler | None = None,
    instrument_libraries: bool = True,
) -> TracerProvider:
    """Install the global tracer provider for ``service_name`` (idempotent per process).

    ``processors`` export the spans (:func:`runtime.trace_export.span_processors` builds them
    from the OTEL_* settings; tests pass an in-memory one); ``sampler`` None is the SDK's
    default (``OTEL_TRACES_SAMPLER``). ``resource_attributes`` (``service.version``,
    ``deployment.environment``; None values are left out) join ``service.name`` and whatever
    ``OTEL_RESOURCE_ATTRIBUTES`` says (the Kubernetes pod, node and namespace, from the
    Downward API).
    """
    global _provider
    if _provider is not None:
        return _provider
    # No atexit shutdown: an unreachable collector must not hold the process past its exit budget.
    attributes = {key: value for key, value in (resource_attributes or {}).items() if value}
    resource = Resource.create({**attributes, SERVICE_NAME: service_name})
    provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    if instrument_libraries:
        _instrument_clients(provider)
    return provider


def _instrument_clients(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (GrpcAioInstrumentorClient(), RedisInstrumentor(), HTTPXClientInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)


def server_interceptor() -> HandlerLayer:
    """The OpenTelemetry grpc.aio server interceptor (a :class:`HandlerLayer`); put it first so
    later ones see the span.

    Spans as opentelemetry-instrumentation-grpc's server interceptor makes them (name = full
    method, kind SERVER, ``rpc.system/service/method``, ``rpc.grpc.status_code``, peer and
    user agent, ERROR status for the server-fault codes, the caller's ``traceparent`` as parent),
    built more cheaply: the library's interceptor cost about 250 µs of CPU per call on the
    bench machine (a proxy around every servicer context, per-call filter functions, handler
    wrapping per call), a third of a hot read's whole cost. Here a method's wrapped handler is
    built once, its fixed attributes too. Health checks get no span: probes call them every few
    seconds and would bury the real traffic.
    """
    from opentelemetry.instrumentation.grpc import __name__ as instrumentation_name
    from opentelemetry.instrumentation.grpc import __version__ as instrumentation_version

    tracer = trace.get_tracer(
        instrumentation_name, instrumentation_version, _provider, schema_url="https://opentelemetry.io/schemas/1.11.0"
    )
    return _TracingInterceptor(tracer)


_HEALTH_PREFIX = "/grpc.health.v1.Health/"
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class _TracingInterceptor(HandlerLayer):
    def __init__(self, tracer: trace.Tracer) -> None:
        super().__init__()
        self._tracer = tracer

    def wrap(self, method: str, handler: MethodHandler) -> MethodHandler:
        if method.startswith(_HEALTH_PREFIX):
            return handler
        return _RpcSpans(self._tracer, method).wrap(handler)


class _RpcSpans:
    """Starts and ends the server span of each call of one method."""

    def __init__(self, tracer: trace.Tracer, method: str) -> None:
        self.tracer = tracer
        self.method = method
        service, _, name = method.lstrip("/").rpartition("/")
        self.attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

    def start(self, context: grpc.aio.ServicerContext) -> tuple[trace.Span, otel_context.Context]:
        """The call's span, begun, and the context its behavior runs in (attached by the caller)."""
        metadata = context.invocation_metadata()
        carrier = {item[0]: item[1] for item in metadata} if metadata else {}
        # Most calls carry no trace context (a dashboard's read, a probe): the propagators then
        # have nothing to read, and asking them costs a lookup per field per propagator.
        parent = propagate.extract(carrier) if _carries_trace_context(carrier) else otel_context.Context()
        attributes: dict[str, Any] = {**self.attributes, **_peer_attributes(context.peer())}
        user_agent = carrier.get("user-agent")
        if user_agent:
            attributes["rpc.user_agent"] = user_agent
        span = self.tracer.start_span(self.method, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes)
        return span, trace.set_span_in_context(span, parent)

    @staticmethod
    def end(span: trace.Span, context: grpc.aio.ServicerContext, error: BaseException | None) -> None:
        # GeneratorExit: a stream closed from outside, after grpc.aio left it (see _stream).
        if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
            code = grpc.StatusCode.CANCELLED
        else:
            code = status_code_of(context, unset=grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if error is not None and not isinstance(error, (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit)):
            span.record_exception(error)
        if code in _SERVER_FAULTS:
            span.set_status(Status(StatusCode.ERROR, f"{code}:{details_of(context) or ''}"))
        span.end()

    def wrap(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._stream(handler.unary_stream), **kwargs)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(self._stream(handler.stream_stream), **kwargs)
        return handler

    def _unary(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            span, span_context = self.start(context)
            token = otel_context.attach(span_context)
            try:
                result = await behavior(request, context)
            except BaseException as error:
                self.end(span, context, error)
                raise
            finally:
                otel_context.detach(token)
            self.end(span, context, None)
            return result

        return traced

    def _stream(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def traced(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            span, span_context = self.start(context)
            try:
                result = behavior(request, context)
                # A servicer's async generator is stepped as it is; only the other forms grpc.aio
                # allows go through stream_items (a generator layer per response otherwise).
                responses = result if inspect.isasyncgen(result) else stream_items(result)
                async with contextlib.aclosing(responses):
                    step, attach, detach = responses.__anext__, otel_context.attach, otel_context.detach
                    while True:
                        # The span is current while the behavior runs, and never across a yield:
                        # grpc.aio leaves this generator suspended when the call is cancelled or
                        # aborted in a write, and Python closes it later in a task of its own, whose
                        # context cannot detach a token attached here.
                        token = attach(span_context)
                        try:
                            response = await step()
                        except StopAsyncIteration:
                            break
                        finally:
                            detach(token)
                        yield response
            except BaseException as error:
                self.end(span, context, error)
                raise
            self.end(span, context, None)

        return traced


def _carries_trace_context(carrier: Mapping[str, Any]) -> bool:
    """Whether ``carrier`` holds any header the configured propagators read (their ``fields``)."""
    global _propagation
    textmap = propagate.get_global_textmap()
    if _propagation[0] is not textmap:
        _propagation = (textmap, frozenset(textmap.fields))
    return not _propagation[1].isdisjoint(carrier)


_propagation: tuple[object, frozenset[str]] = (None, frozenset())
"""The propagator in use, and the header names it reads."""


def _peer_attributes(peer: str | None) -> Mapping[str, str]:
    """``net.peer.*`` of a gRPC peer string, parsed once per peer (a connection's calls share it)."""
    attributes = _PEER_ATTRIBUTES.get(peer)
    if attributes is None:
        if len(_PEER_ATTRIBUTES) >= _PEER_CACHE_LIMIT:
            _PEER_ATTRIBUTES.clear()
        attributes = _PEER_ATTRIBUTES[peer] = _parse_peer(peer)
    return attributes


_PEER_ATTRIBUTES: dict[str | None, Mapping[str, str]] = {}
_PEER_CACHE_LIMIT = 4096
"""Peers remembered at most (ports change with every connection: the cache is emptied when full)."""


def _parse_peer(peer: str | None) -> Mapping[str, str]:
    # "ipv4:127.0.0.1:57284", "ipv6:[::1]:57284", "ipv4:10.2.1.1:57284,127.0.0.1:57284"
    if not peer or peer.startswith("unix:"):
        return {}
    _, _, address = peer.split(",")[0].partition(":")
    ip, _, port = address.rpartition(":")
    if not ip:
        return {}
    ip = unquote(ip)
    attributes = {"net.peer.ip": ip, "net.peer.port": port}
    if ip in ("[::1]", "127.0.0.1"):
        attributes["net.peer.name"] = "localhost"
    return attributes


def get_tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_context() -> dict[str, str]:
    """The current trace context as a plain dict (W3C ``traceparent``/``tracestate``) for a job."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """The context stored by :func:`inject_context`; empty/None gives a fresh root context."""
    return propagate.extract(dict(carrier or {}))


@contextlib.contextmanager
def use_context(carrier: Mapping[str, str] | None) -> Iterator[otel_context.Context]:
    """Make the carried context current for the ``with`` block (a queued job's body)."""
    ctx = extract_context(carrier)
    token = otel_context.attach(ctx)
    try:
        yield ctx
    finally:
        otel_context.detach(token)


def configure_process_telemetry(name: str, settings: CommonSettings) -> TracerProvider:
    """Tracing for the process called ``name``, from its settings: the one place every process
    (gRPC service, queue worker, gateway) sets OpenTelemetry up, through runtime.process."""
    global _flush_seconds
    _flush_seconds = settings.trace_flush_seconds
    processors = trace_export.span_processors(settings)
    return configure_telemetry(
        settings.otel_service_name or name,
        resource_attributes=resource_attributes(settings),
        processors=processors,
        sampler=trace_export.sampler(settings, exporting=bool(processors)),
    )


def resource_attributes(settings: CommonSettings) -> dict[str, str | None]:
    """The resource attributes a process's settings carry (image version, commit, environment)."""
    return {
        "service.version": settings.service_version,
        "vcs.ref.head.revision": settings.service_revision,
        "deployment.environment": settings.deployment_environment,
    }


def flush_seconds() -> float:
    """How long :func:`shutdown` may wait for the collector (``TRACE_FLUSH_SECONDS``): exit
    budgets (the gRPC server's watchdog, the multi-process supervisor) add it to their own."""
    return _flush_seconds


def shutdown(timeout_seconds: float | None = None) -> None:
    """Export the spans still pending and stop exporting, waiting at most ``timeout_seconds``
    (default :func:`flush_seconds`) for the collector to take them."""
    global _provider
    provider, _provider = _provider, None
    if provider is None:
        return
    if timeout_seconds is None:
        timeout_seconds = _flush_seconds

    def flush_and_close() -> None:
        provider.force_flush(timeout_millis=int(timeout_seconds * 1000))
        provider.shutdown()

    # The exporter may retry against a dead collector; never wait for it longer than asked.
    worker = threading.Thread(target=flush_and_close, name="otel-shutdown", daemon=True)
    worker.start()
    worker.join(timeout_seconds)
