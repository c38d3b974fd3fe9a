"""The OTEL_* settings choose the exporter and endpoint; background loops begin no trace."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from pydantic import ValidationError

from devsupport.procs import child_env
from devsupport.waiting import wait_until_blocking
from runtime.config import CommonSettings
from runtime.telemetry import inject_context, use_context
from runtime.trace_export import SkipBackgroundRoots, otlp_exporter, sampler, span_processors
from tests.support.otlp_receiver import OtlpReceiver


def settings(**values: Any) -> CommonSettings:
    return CommonSettings(**values)


def recorded(settings_: CommonSettings) -> tuple[trace.Tracer, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler(settings_))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider.get_tracer("tests"), memory


def names(memory: InMemorySpanExporter) -> list[str]:
    return [span.name for span in memory.get_finished_spans()]


def test_a_client_call_outside_any_request_begins_no_trace() -> None:
    tracer, memory = recorded(settings())
    with tracer.start_as_current_span("BLPOP", kind=trace.SpanKind.CLIENT) as span:
        carrier = inject_context()
    assert names(memory) == []
    assert not span.is_recording()
    # The callee follows: the propagated context's sampled flag (bit 0) is off.
    assert int(carrier["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0


def test_a_client_call_inside_a_request_is_traced() -> None:
    tracer, memory = recorded(settings())
    with (
        tracer.start_as_current_span("GET /api", kind=trace.SpanKind.SERVER),
        tracer.start_as_current_span("EVALSHA", kind=trace.SpanKind.CLIENT),
    ):
        pass
    assert names(memory) == ["EVALSHA", "GET /api"]


@pytest.mark.parametrize("kind", [trace.SpanKind.SERVER, trace.SpanKind.CONSUMER, trace.SpanKind.PRODUCER])
def test_requests_jobs_and_batches_still_begin_traces(kind: trace.SpanKind) -> None:
    tracer, memory = recorded(settings())
    with tracer.start_as_current_span("root", kind=kind):
        pass
    assert names(memory) == ["root"]


def test_a_server_called_from_an_untraced_background_loop_records_nothing() -> None:
    tracer, memory = recorded(settings())
    with tracer.start_as_current_span("ListQueues", kind=trace.SpanKind.CLIENT):
        carrier = inject_context()
    with use_context(carrier), tracer.start_as_current_span("/QueueAdmin/ListQueues", kind=trace.SpanKind.SERVER):
        pass
    assert names(memory) == []


def test_trace_background_records_the_background_roots_too() -> None:
    tracer, memory = recorded(settings(trace_background=True))
    with tracer.start_as_current_span("BLPOP", kind=trace.SpanKind.CLIENT):
        pass
    assert names(memory) == ["BLPOP"]
    assert not isinstance(sampler(settings(trace_background=True)), SkipBackgroundRoots)


def test_the_sdk_disabled_records_and_exports_nothing() -> None:
    disabled = settings(otel_sdk_disabled=True, otel_exporter_otlp_endpoint="http://127.0.0.1:4317")
    assert sampler(disabled) is ALWAYS_OFF
    assert span_processors(disabled) == []


def test_nothing_is_exported_without_an_endpoint() -> None:
    assert span_processors(settings()) == []
    assert otlp_exporter(settings(otel_exporter_otlp_protocol="http/protobuf")) is None


def test_the_none_exporter_exports_nothing_even_with_an_endpoint() -> None:
    assert span_processors(settings(otel_traces_exporter="none", otel_exporter_otlp_endpoint="http://x:4317")) == []


def test_the_console_exporter_writes_spans_to_stdout() -> None:
    (processor,) = span_processors(settings(otel_traces_exporter="console"))
    assert isinstance(processor, SimpleSpanProcessor)
    assert isinstance(processor.span_exporter, ConsoleSpanExporter)


def test_an_unknown_exporter_is_a_settings_error_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="unknown exporter zipkin"):
        settings(otel_traces_exporter="otlp,zipkin")


def test_an_unknown_protocol_is_a_settings_error() -> None:
    with pytest.raises(ValidationError):
        settings(otel_exporter_otlp_protocol="http/json")


def export_one(settings_: CommonSettings, name: str) -> None:
    provider = TracerProvider(sampler=sampler(settings_))
    for processor in span_processors(settings_):
        provider.add_span_processor(processor)
    with provider.get_tracer("tests").start_as_current_span(name, kind=trace.SpanKind.SERVER):
        pass
    provider.shutdown()


@pytest.mark.timeout(30)
def test_spans_reach_a_collector_over_otlp_grpc() -> None:
    with OtlpReceiver() as receiver:
        export_one(settings(otel_exporter_otlp_endpoint=receiver.grpc_endpoint), "over-grpc")
        wait_until_blocking(
            lambda: [s.name for s in receiver.snapshot()] == ["over-grpc"], within=10, what="the span at the receiver"
        )
        assert receiver.requests == {"grpc": 1}


@pytest.mark.timeout(30)
def test_spans_reach_a_collector_over_otlp_http_at_v1_traces() -> None:
    with OtlpReceiver() as receiver:
        http = settings(otel_exporter_otlp_protocol="http/protobuf", otel_exporter_otlp_endpoint=receiver.http_endpoint)
        export_one(http, "over-http")
        wait_until_blocking(
            lambda: [s.name for s in receiver.snapshot()] == ["over-http"], within=10, what="the span at the receiver"
        )
        assert receiver.requests == {"http": 1}


@pytest.mark.timeout(30)
def test_the_traces_endpoint_and_protocol_win_over_the_generic_ones() -> None:
    with OtlpReceiver() as receiver:
        specific = settings(
            otel_exporter_otlp_protocol="grpc",
            otel_exporter_otlp_endpoint="http://127.0.0.1:9",
            otel_exporter_otlp_traces_protocol="http/protobuf",
            otel_exporter_otlp_traces_endpoint=f"{receiver.http_endpoint}/v1/traces",
        )
        export_one(specific, "specific")
        wait_until_blocking(
            lambda: [s.name for s in receiver.snapshot()] == ["specific"], within=10, what="the span at the receiver"
        )
        assert receiver.requests == {"http": 1}


OTEL_CHOICES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_SDK_DISABLED",
)
SAMPLED_CALLER = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def test_a_process_that_exports_nowhere_begins_no_trace_yet_keeps_trace_ids() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler(settings(), exporting=False))
    provider.add_span_processor(SimpleSpanProcessor(memory))  # only to see what would be recorded
    with provider.get_tracer("tests").start_as_current_span("GET /api", kind=trace.SpanKind.SERVER) as span:
        carrier = inject_context()
    assert names(memory) == []
    assert span.get_span_context().is_valid  # log lines still carry its trace_id
    assert int(carrier["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0


def test_a_process_that_exports_nowhere_still_follows_a_sampled_caller() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler(settings(), exporting=False))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with (
        use_context(SAMPLED_CALLER),
        provider.get_tracer("tests").start_as_current_span("/Status/Ingest", kind=trace.SpanKind.SERVER),
    ):
        carrier = inject_context()
    assert names(memory) == ["/Status/Ingest"]
    assert carrier["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert carrier["traceparent"].endswith("-01")  # the processes after it still record


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("variables", "begins_traces"),
    [({}, False), ({"OTEL_TRACES_EXPORTER": "console"}, True), ({"OTEL_TRACES_EXPORTER": "none"}, False)],
)
def test_a_process_begins_traces_only_when_it_exports_them(variables: dict[str, str], begins_traces: bool) -> None:
    script = (
        "from opentelemetry import trace\n"
        "from runtime.config import CommonSettings\n"
        "from runtime.telemetry import configure_process_telemetry\n"
        "provider = configure_process_telemetry('probe', CommonSettings())\n"
        "span = provider.get_tracer('probe').start_span('root', kind=trace.SpanKind.SERVER)\n"
        "print('RECORDING' if span.is_recording() else 'DROPPED')\n"
    )
    env = child_env()
    for name in OTEL_CHOICES:  # only ``variables`` decide, whatever this process was started with
        env.pop(name, None)
    env.update(variables)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == ("RECORDING" if begins_traces else "DROPPED")
