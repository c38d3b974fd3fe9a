"""A worker exports its queue's backlog where Prometheus scrapes it: what the production
autoscalers read through prometheus-adapter (k8s/overlays/production/prometheus-adapter-rules.yaml)."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from devsupport.ports import free_port
from devsupport.procs import SpawnService
from devsupport.waiting import wait_until
from runtime.queue import QueueAdmin, QueueClient, QueueSpec
from tests.queue.harness import settings, worker_env

WAITING = 3


def jobs_by_state(url: str) -> dict[tuple[str, str], float]:
    """``queue_jobs_by_state`` of a /metrics page: (queue, state) → value."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.labels["queue"], sample.labels["state"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "queue_jobs_by_state"
        for sample in family.samples
    }


async def test_a_worker_of_a_paused_queue_exports_the_waiting_jobs_as_its_backlog(
    spawn: SpawnService, redis_url: str, spec: QueueSpec, client: QueueClient, admin: QueueAdmin
) -> None:
    await admin.pause()  # nothing is taken: the backlog stays where the test put it
    for _ in range(WAITING):
        await client.enqueue("statistics_aggregation")
    port = free_port()
    worker = spawn("services.workflow.worker", env={**worker_env(settings(redis_url)), "METRICS_PORT": str(port)})

    async def exported() -> bool:
        assert worker.poll() is None, worker.output()
        try:
            states = await asyncio.to_thread(jobs_by_state, f"http://127.0.0.1:{port}/metrics")
        except OSError:
            return False  # not listening yet
        return states.get((spec.name, "waiting")) == WAITING

    await wait_until(exported, within=30, what=f"{WAITING} waiting jobs on /metrics", interval=0.2)
    assert (await admin.counts()).waiting == WAITING
