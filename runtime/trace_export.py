"""Where spans go and which traces begin: the standard OTEL_* variables, and background roots left out.

Exporters (``OTEL_TRACES_EXPORTER``, comma-separated; default ``otlp``):

- ``otlp``: OTLP over gRPC, or over HTTP when ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` (else
  ``OTEL_EXPORTER_OTLP_PROTOCOL``) is ``http/protobuf``. The endpoint is
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as given, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` (for
  HTTP with ``/v1/traces`` appended, as the specification says). With neither set nothing is
  exported, so a development machine without a collector does not retry one forever. Headers,
  timeout, compression and certificates are read by the exporter itself from their
  ``OTEL_EXPORTER_OTLP_*`` variables.
- ``console``: one JSON span per line on stdout (debugging).
- ``none``: no export (spans still give log lines their ``trace_id``).

``OTEL_SDK_DISABLED=true`` records nothing at all.

A process that exports nowhere (``none``, or ``otlp`` without an endpoint) begins no traces: its
roots are not sampled, because a recorded span nobody exports is only work (at 500 AMI events/s
it was about a tenth of a core across the ingest and the status service). Its spans still carry
trace ids (log lines keep ``trace_id``), and a sampled caller's trace is still followed, so the
context it passes on to the processes that do export stays whole.

Sampling: ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` as the SDK reads them, wrapped
by :class:`SkipBackgroundRoots`: a trace whose first span is a *client* call (a Redis command
or gRPC call made outside any request: worker claims and BLPOPs, leases, the gateway's queue
probe, health checks of dependencies) is not recorded, and the callee follows that decision
through the propagated context. Requests (server spans), jobs (consumer spans), enqueues
(producer spans) and ingest batches still begin traces. ``TRACE_BACKGROUND=true`` records the
background roots too.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from runtime.config import CommonSettings

__all__ = ["SkipBackgroundRoots", "otlp_exporter", "sampler", "span_processors"]


class SkipBackgroundRoots(Sampler):
    """Drops traces begun by a CLIENT span; everything else is decided by ``delegate``."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT and not trace.get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"SkipBackgroundRoots{{{self.delegate.get_description()}}}"


def sampler(settings: CommonSettings, *, exporting: bool = True) -> Sampler:
    """The sampler the settings ask for (the SDK's env sampler, background roots left out);
    ``exporting`` False (the process has no span processor): no roots, callers followed."""
    if settings.otel_sdk_disabled:
        return ALWAYS_OFF
    if not exporting:
        return ParentBased(ALWAYS_OFF)
    configured = _get_from_env_or_default()
    return configured if settings.trace_background else SkipBackgroundRoots(configured)


def span_processors(settings: CommonSettings) -> list[SpanProcessor]:
    """One processor per configured exporter (none when disabled or when no endpoint is set)."""
    if settings.otel_sdk_disabled:
        return []
    names = settings.otel_traces_exporter.split(",")  # checked and lower-cased by the settings
    processors: list[SpanProcessor] = []
    if "otlp" in names:
        exporter = otlp_exporter(settings)
        if exporter is not None:
            processors.append(BatchSpanProcessor(exporter))
    if "console" in names:
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter()))
    return processors


def otlp_exporter(settings: CommonSettings) -> SpanExporter | None:
    """The OTLP exporter of the configured protocol and endpoint; None without an endpoint."""
    protocol = settings.otel_exporter_otlp_traces_protocol or settings.otel_exporter_otlp_protocol
    endpoint = settings.otel_exporter_otlp_traces_endpoint
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        if endpoint is None and settings.otel_exporter_otlp_endpoint:
            endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return HttpExporter(endpoint=endpoint) if endpoint else None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    endpoint = endpoint or settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return None
    return GrpcExporter(endpoint=endpoint, insecure=True if endpoint.startswith("http://") else None)
