"""Trace context survives a trip through a plain dict (a queued job) and continues the trace."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from runtime.telemetry import extract_context, inject_context, use_context

tracer = TracerProvider().get_tracer("tests.runtime")


def test_inject_outside_a_span_gives_an_empty_carrier() -> None:
    assert "traceparent" not in inject_context()


def test_job_spans_continue_the_producers_trace() -> None:
    with tracer.start_as_current_span("enqueue") as producer:
        carrier = inject_context()
    assert set(carrier) >= {"traceparent"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in carrier.items())

    with use_context(carrier), tracer.start_as_current_span("job") as job:
        pass
    producer_context = producer.get_span_context()
    assert isinstance(job, ReadableSpan)
    assert job.get_span_context().trace_id == producer_context.trace_id
    assert job.parent is not None
    assert job.parent.span_id == producer_context.span_id


def test_use_context_restores_the_previous_context() -> None:
    with tracer.start_as_current_span("enqueue"):
        carrier = inject_context()
    with use_context(carrier):
        pass
    assert not trace.get_current_span().get_span_context().is_valid


def test_missing_or_garbled_carrier_starts_a_new_trace() -> None:
    for carrier in (None, {}, {"traceparent": "garbage"}):
        with use_context(carrier), tracer.start_as_current_span("job") as job:
            pass
        assert isinstance(job, ReadableSpan)
        assert job.parent is None
    assert extract_context(None) is not None
