"""Spans of ingested batches: each continues the trace the ingest began for its batch.

The ingest puts its ``ingest.batch`` span's context in ``IngestBatch.trace_context``. Here each
batch gets a ``status.ingest.apply`` span, a child of that context linked to the Ingest stream's
own span; while a batch's change set is fanned out to this replica's watchers its span is the
current one, so the fan-out span (:mod:`services.status.watch`) is its child. The apply span's
traceparent also rides in the batch's change-stream entry (:func:`traceparents`), so the other
replicas' fan-outs (and this one's, when its follower read the entry first) are its children
too. Batches without a context (heartbeats, older ingests) get no span.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from opentelemetry import trace
from switchboard.status.v1 import status_pb2

from runtime.telemetry import extract_context

tracer = trace.get_tracer("services.status")


def start(batches: Sequence[status_pb2.IngestBatch]) -> list[trace.Span | None]:
    """A span per traced batch (None for the others), begun now."""
    stream = trace.get_current_span().get_span_context()
    links = [trace.Link(stream)] if stream.is_valid else None
    return [
        tracer.start_span(
            "status.ingest.apply",
            context=extract_context(batch.trace_context),
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={
                "ingest.source_id": batch.source_id,
                "ingest.sequence": batch.sequence,
                "ingest.changes": len(batch.changes),
            },
        )
        if batch.trace_context
        else None
        for batch in batches
    ]


def traceparents(spans: Sequence[trace.Span | None]) -> list[str]:
    """The W3C traceparent of each apply span, for its batch's change-stream entry ('' for none)."""
    parents = []
    for span in spans:
        context = span.get_span_context() if span is not None else trace.INVALID_SPAN_CONTEXT
        valid = context.is_valid
        parents.append(f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}" if valid else "")
    return parents


@contextlib.contextmanager
def current(span: trace.Span | None) -> Iterator[None]:
    """Make ``span`` the current one inside the block (nothing for an untraced batch)."""
    if span is None:
        yield
        return
    with trace.use_span(span, end_on_exit=False):
        yield


def end(
    spans: Sequence[trace.Span | None], *, revisions: Sequence[int] = (), error: BaseException | None = None
) -> None:
    """End every span: the applied ones with their revision, the rest with ``error``."""
    for index, span in enumerate(spans):
        if span is None:
            continue
        if index < len(revisions):
            span.set_attribute("status.revision", revisions[index])
        elif error is not None:
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)[:200]))
        span.end()
