"""Control of a queue: remove, clean by state and age, drain, listings with paging."""

from __future__ import annotations

import pytest

from devsupport.waiting import wait_until
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from runtime.queue import JobRequest, JobState, QueueAdmin, QueueClient
from tests.queue.harness import StartWorkers, settled


async def test_remove_deletes_a_waiting_job(client: QueueClient, admin: QueueAdmin) -> None:
    job_id = await client.enqueue("statistics_aggregation")
    await admin.remove(job_id)
    with pytest.raises(NotFound):
        await admin.job(job_id)
    assert (await admin.counts()).waiting == 0


async def test_removing_an_unknown_job_is_not_found(admin: QueueAdmin) -> None:
    with pytest.raises(NotFound):
        await admin.remove("nope")


async def test_promoting_a_waiting_job_is_refused(client: QueueClient, admin: QueueAdmin) -> None:
    job_id = await client.enqueue("statistics_aggregation")
    with pytest.raises(FailedPrecondition):
        await admin.promote(job_id)


async def test_jobs_are_listed_by_state_in_pages(client: QueueClient, admin: QueueAdmin) -> None:
    await client.enqueue_many([JobRequest("statistics_aggregation", job_id=f"j{i}") for i in range(7)])
    first, total = await admin.jobs("waiting", page=1, page_size=5)
    second, _ = await admin.jobs("waiting", page=2, page_size=5)
    assert total == 7
    assert [j.job_id for j in first + second] == [f"j{i}" for i in range(7)]
    with pytest.raises(InvalidArgument) as caught:
        await admin.jobs("finished")
    assert caught.value.field == "state"


async def test_waiting_jobs_are_listed_in_start_order_across_priorities_and_pages(
    client: QueueClient, admin: QueueAdmin
) -> None:
    plan = [(0, "a"), (3, "b"), (0, "c"), (9, "d"), (3, "e"), (0, "f")]
    await client.enqueue_many([JobRequest("statistics_aggregation", job_id=j, priority=p) for p, j in plan])
    pages = [await admin.jobs("waiting", page=page, page_size=4) for page in (1, 2)]
    assert [j.job_id for j in pages[0][0] + pages[1][0]] == ["d", "b", "e", "a", "c", "f"]
    assert {total for _, total in pages} == {6}
    assert [j.state for j in pages[1][0]] == [JobState.WAITING, JobState.WAITING]
    assert (await admin.job("c")).state is JobState.WAITING


async def test_removing_and_cleaning_reach_waiting_jobs_of_every_priority(
    client: QueueClient, admin: QueueAdmin
) -> None:
    await client.enqueue_many(
        [JobRequest("statistics_aggregation", job_id=j, priority=p) for p, j in [(0, "a"), (5, "b"), (0, "c")]]
    )
    await admin.remove("c")
    assert sorted(await admin.clean("waiting")) == ["a", "b"]
    assert (await admin.counts()).waiting == 0


async def test_drain_removes_waiting_and_optionally_delayed_jobs(client: QueueClient, admin: QueueAdmin) -> None:
    await client.enqueue_many([JobRequest("statistics_aggregation") for _ in range(5)])
    await client.enqueue("statistics_aggregation", delay_s=60)
    assert await admin.drain() == 5
    assert (await admin.counts()).delayed == 1
    assert await admin.drain(include_delayed=True) == 1


CLEAN_GRACE_S = 1.0
"""Longer than a loaded machine takes from a job's end to the clean that must spare it."""


@pytest.mark.slow
async def test_clean_removes_finished_jobs_older_than_the_grace(
    client: QueueClient, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    await start_workers(1)
    old = [await client.enqueue("statistics_aggregation") for _ in range(3)]
    await wait_until(lambda: settled(admin), within=10, what="old jobs done")
    last_finished_ms = max([(await admin.job(job_id)).finished_at or 0 for job_id in old])

    async def old_past_the_grace() -> bool:
        seconds, micros = await admin.redis.time()  # the clock the queue stamps jobs with
        return seconds * 1000 + micros // 1000 - last_finished_ms > CLEAN_GRACE_S * 1000

    await wait_until(old_past_the_grace, within=CLEAN_GRACE_S + 10, what="the old jobs older than the grace")
    fresh = await client.enqueue("statistics_aggregation")
    await wait_until(lambda: settled(admin), within=10, what="fresh job done")
    removed = await admin.clean("completed", grace_s=CLEAN_GRACE_S)
    assert sorted(removed) == sorted(old)
    assert (await admin.job(fresh)).state is JobState.COMPLETED


@pytest.mark.slow
async def test_retention_keeps_only_the_last_completed_jobs(
    client: QueueClient, admin: QueueAdmin, start_workers: StartWorkers
) -> None:
    await start_workers(1, keep_completed=5)
    await client.enqueue_many([JobRequest("statistics_aggregation") for _ in range(20)])
    await wait_until(lambda: settled(admin), within=10, what="all done")
    assert (await admin.counts()).completed == 5


async def test_cleaning_active_jobs_is_refused(admin: QueueAdmin) -> None:
    with pytest.raises(InvalidArgument):
        await admin.clean("active")
