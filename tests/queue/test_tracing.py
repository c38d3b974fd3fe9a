"""The enqueuer's span context travels inside the job; the job's run span is its child."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from devsupport.waiting import wait_until
from runtime.queue import JobState, QueueAdmin, QueueClient, QueueSpec, Worker


async def test_job_run_span_is_a_child_of_the_enqueue_span(spec: QueueSpec, redis: Redis, admin: QueueAdmin) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    client = QueueClient(spec, redis, tracer_provider=provider)
    worker = Worker(spec, redis, tracer_provider=provider)
    running = asyncio.create_task(worker.run())
    with tracer.start_as_current_span("operator request"):
        job_id = await client.enqueue("statistics_aggregation")
    await wait_until(lambda: _done(admin, job_id), within=10, what="job done")
    worker.stop()
    await running
    spans = {s.name: s for s in exporter.get_finished_spans()}
    request, enqueue, run = (
        spans["operator request"],
        spans["queue.enqueue statistics_aggregation"],
        spans["queue.run statistics_aggregation"],
    )
    assert enqueue.parent is not None
    assert enqueue.parent.span_id == request.context.span_id
    assert run.parent is not None
    assert run.parent.span_id == enqueue.context.span_id
    assert run.context.trace_id == request.context.trace_id
    provider.shutdown()


async def _done(admin: QueueAdmin, job_id: str) -> bool:
    return (await admin.job(job_id)).state is JobState.COMPLETED
