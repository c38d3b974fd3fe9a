"""Priorities, with a worker of its own (started after the jobs are enqueued, one job at a time)."""

from __future__ import annotations

import pytest

from devsupport.waiting import wait_until
from runtime.queue import JobState, QueueAdmin, QueueClient
from tests.queue.harness import StartWorkers, settled

pytestmark = pytest.mark.slow


async def started_order(admin: QueueAdmin, ids: list[str]) -> list[str]:
    jobs = [await admin.job(i) for i in ids]
    assert all(j.state is JobState.COMPLETED for j in jobs)
    return [j.job_id for j in sorted(jobs, key=lambda j: j.started_at or 0)]


async def test_higher_priority_starts_first_and_equal_priorities_keep_fifo(
    client: QueueClient, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    plan = [(0, "a"), (5, "b"), (10, "c"), (0, "d"), (5, "e"), (10, "f")]
    for priority, job_id in plan:
        await client.enqueue("heavy_workflow_execution", {"duration_ms": 5}, job_id=job_id, priority=priority)
    await start_workers(1, concurrency=1)
    await wait_until(lambda: settled(admin), within=10, what="all jobs done")
    assert await started_order(admin, [j for _, j in plan]) == ["c", "f", "b", "e", "a", "d"]
