"""A worker that stops flushes its spans: a job's run span reaches the collector though the batch
exporter's own schedule would have sent it much later."""

from __future__ import annotations

import signal

import pytest

from devsupport.procs import SpawnService
from devsupport.waiting import wait_until, wait_until_blocking
from runtime.queue import JobState, QueueAdmin, QueueClient
from tests.queue.harness import settings, worker_env, workers_at_least
from tests.support.otlp_receiver import OtlpReceiver


@pytest.mark.timeout(60)
async def test_a_worker_stopped_right_after_a_job_exports_the_jobs_run_span(
    spawn: SpawnService, redis_url: str, client: QueueClient, admin: QueueAdmin
) -> None:
    with OtlpReceiver() as receiver:
        env = {
            **worker_env(settings(redis_url)),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",  # only the shutdown flush can send it in time
        }
        before = len(await admin.workers())
        worker = spawn("services.workflow.worker", env=env)
        await wait_until(lambda: workers_at_least(admin, before + 1), within=20, what="worker up")
        job_id = await client.enqueue("statistics_aggregation")

        async def completed() -> bool:
            return (await admin.job(job_id)).state is JobState.COMPLETED

        await wait_until(completed, within=20, what="the job completed")
        assert not receiver.snapshot(), "exported before the stop: the test would prove nothing"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait_exit(timeout=15) == 0, worker.output()

        def run_span_received() -> bool:
            return any(
                s.name == "queue.run statistics_aggregation" and s.attributes.get("queue.job_id") == job_id
                for s in receiver.snapshot()
            )

        wait_until_blocking(run_span_received, within=5, what="the run span at the collector", detail=worker.output)
