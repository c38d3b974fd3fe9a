"""An ingested batch continues the ingest's trace: apply span (linked to its stream), then the watch fan-out."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devsupport.status_batches import batch, op_up
from devsupport.waiting import wait_until
from runtime.telemetry import inject_context
from services.status import ingest_tracing, watch
from tests.status.harness import MakeStatus, RunningStatus


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.status")
    monkeypatch.setattr(ingest_tracing, "tracer", tracer)
    monkeypatch.setattr(watch, "tracer", tracer)
    return tracer, exporter


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


async def loaded(status: RunningStatus) -> RunningStatus:
    """``status`` once its follower has loaded the state.

    A replica starts serving after at most 2 s even when its first load is slower (a loaded
    machine): a batch ingested before that load is in the state it loads, not fanned out, so
    there would be no fan-out span to look for."""
    assert await status.app.service.follower.wait_ready(60), "the follower's first load"
    return status


async def test_a_traced_batch_is_applied_and_fanned_out_under_the_ingests_span(
    status: RunningStatus, spans: tuple[trace.Tracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    await loaded(status)
    watcher = status.app.service.hub.subscribe()
    with tracer.start_as_current_span("ingest.batch", kind=trace.SpanKind.PRODUCER) as producer:
        traced = batch(op_up("sales", "PJSIP/1"))
        traced.trace_context.update(inject_context())
    await status.ingest(traced)

    # Delivered at once when the revision follows, else when the follower reads the stream: wait.
    found = await wait_until(
        lambda: by_name(exporter) if "status.watch.fanout" in by_name(exporter) else None,
        within=30,
        what="the fan-out span",
    )
    apply, fanout = found["status.ingest.apply"], found["status.watch.fanout"]
    batch_span = producer.get_span_context()
    assert apply.parent is not None
    assert apply.parent.span_id == batch_span.span_id
    assert apply.context.trace_id == batch_span.trace_id
    assert apply.kind is trace.SpanKind.CONSUMER
    assert apply.attributes is not None
    assert apply.attributes["ingest.changes"] == 1
    # Delivered straight after the apply, or read back from the stream first: the apply's child.
    assert fanout.context.trace_id == batch_span.trace_id
    assert fanout.parent is not None
    assert fanout.parent.span_id == apply.context.span_id
    assert fanout.attributes is not None
    assert fanout.attributes["status.watchers"] == 1
    assert not watcher.queue.empty()


async def test_another_replicas_fanout_is_the_apply_spans_child_through_the_stream(
    make_status: MakeStatus, spans: tuple[trace.Tracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    writer, reader = await loaded(await make_status()), await loaded(await make_status())
    watcher = reader.app.service.hub.subscribe()
    with tracer.start_as_current_span("ingest.batch", kind=trace.SpanKind.PRODUCER) as producer:
        traced = batch(op_up("sales", "PJSIP/1"))
        traced.trace_context.update(inject_context())
    [ack] = await writer.ingest(traced)
    assert await reader.app.service.follower.caught_up(ack.revision, 30.0)

    found = exporter.get_finished_spans()
    [apply] = [s for s in found if s.name == "status.ingest.apply"]
    fanouts = [s for s in found if s.name == "status.watch.fanout"]
    assert [s.context.trace_id for s in fanouts] == [producer.get_span_context().trace_id]
    assert fanouts[0].parent is not None
    assert fanouts[0].parent.span_id == apply.context.span_id
    assert not watcher.queue.empty()


async def test_a_batch_without_a_trace_context_gets_no_span(
    status: RunningStatus, spans: tuple[trace.Tracer, InMemorySpanExporter]
) -> None:
    _, exporter = spans
    status.app.service.hub.subscribe()
    await status.ingest(batch(op_up("sales", "PJSIP/1")))
    assert not {"status.ingest.apply", "status.watch.fanout"} & by_name(exporter).keys()


def test_an_apply_span_links_the_ingest_stream_the_batch_arrived_on(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    # The batch's own trace is its parent; the long-lived stream (one server span for hours of
    # batches) is only linked, so each batch stays a short trace of its own.
    tracer, exporter = spans
    with tracer.start_as_current_span("ingest.batch", kind=trace.SpanKind.PRODUCER) as producer:
        traced = batch(op_up("sales", "PJSIP/1"))
        traced.trace_context.update(inject_context())
    with tracer.start_as_current_span("Ingest", kind=trace.SpanKind.SERVER) as stream:
        [apply] = ingest_tracing.start([traced])
    assert apply is not None
    apply.end()

    finished = by_name(exporter)["status.ingest.apply"]
    assert finished.parent is not None
    assert finished.parent.span_id == producer.get_span_context().span_id
    assert [link.context.span_id for link in finished.links] == [stream.get_span_context().span_id]
