"""Rate limits hold across worker processes: a global sliding window and per-key windows."""

from __future__ import annotations

import pytest

from devsupport.waiting import wait_until
from runtime.queue import JobInfo, JobRequest, QueueAdmin, QueueClient
from tests.queue.harness import StartWorkers, settled

pytestmark = pytest.mark.slow


def max_in_any_window(starts: list[int], window_ms: int) -> int:
    starts = sorted(starts)
    return max(sum(1 for s in starts if first <= s < first + window_ms) for first in starts)


async def completed_jobs(admin: QueueAdmin) -> list[JobInfo]:
    jobs, _ = await admin.jobs("completed", page_size=1000)
    return jobs


async def test_global_limit_is_never_exceeded_in_any_window_across_two_workers(
    client: QueueClient, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    await client.enqueue_many([JobRequest("statistics_aggregation") for _ in range(25)])
    await start_workers(2, rate_limit="10/500ms")
    await wait_until(lambda: settled(admin), within=10, what="all done")
    starts = [j.started_at or 0 for j in await completed_jobs(admin)]
    assert len(starts) == 25
    assert max_in_any_window(starts, 500) == 10
    assert max(starts) - min(starts) >= 1000


async def test_per_key_limit_throttles_one_key_without_holding_back_others(
    client: QueueClient, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    chat1 = [f"c1-{i}" for i in range(5)]
    requests = [JobRequest("statistics_aggregation", job_id=j, rate_key="chat-1") for j in chat1]
    requests += [JobRequest("statistics_aggregation", job_id=f"c2-{i}", rate_key="chat-2") for i in range(2)]
    await client.enqueue_many(requests)
    await start_workers(1, key_rate_limit="2/500ms")
    await wait_until(lambda: settled(admin), within=10, what="all done")
    jobs = {j.job_id: j for j in await completed_jobs(admin)}
    first_start = min(j.started_at or 0 for j in jobs.values())
    chat1_starts = [jobs[j].started_at or 0 for j in chat1]
    assert max_in_any_window(chat1_starts, 500) == 2
    assert chat1_starts == sorted(chat1_starts), "jobs of one key keep their FIFO order"
    assert all((jobs[f"c2-{i}"].started_at or 0) - first_start < 300 for i in range(2))
