"""Tests of traces: every component's spans into one in-memory exporter, and a span's ancestry."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

__all__ = ["ancestry", "global_tracing"]


@contextlib.contextmanager
def global_tracing(exporter: InMemorySpanExporter) -> Iterator[None]:
    """Every component's tracer (the processes' global one) records into ``exporter``, and gRPC
    client calls carry the context, as ``runtime.telemetry.configure_telemetry`` sets them up."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = None, Once()
    trace.set_tracer_provider(provider)
    client = GrpcAioInstrumentorClient()
    client.instrument(tracer_provider=provider)
    try:
        yield
    finally:
        client.uninstrument()
        provider.shutdown()
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


def ancestry(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """The names of ``span`` and its ancestors, innermost first."""
    by_id = {s.context.span_id: s for s in spans}
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names
