"""Jobs run by one real `python -m services.workflow.worker` process shared by this module's tests:
delays, retries, failures, timeouts, pause, progress and events."""

from __future__ import annotations

import time

import pytest

from devsupport.procs import ServiceProcess
from devsupport.waiting import wait_until
from runtime.queue import JobState, QueueAdmin, QueueClient

pytestmark = pytest.mark.slow


async def test_delayed_job_waits_until_promoted(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    job_id = await client.enqueue("statistics_aggregation", delay_s=60)
    assert (await admin.job(job_id)).state is JobState.DELAYED
    await admin.promote(job_id)
    await wait_until(lambda: _state_is(admin, job_id, JobState.COMPLETED), within=10, what="promoted job done")


async def test_short_delay_runs_once_due(client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess) -> None:
    job_id = await client.enqueue("statistics_aggregation", delay_s=0.3)
    await wait_until(lambda: _state_is(admin, job_id, JobState.COMPLETED), within=10, what="delayed job done")
    job = await admin.job(job_id)
    assert job.started_at is not None
    assert job.started_at - job.enqueued_at >= 290


async def test_a_jobs_times_are_epoch_ms_of_the_redis_clock_in_order(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    # Redis runs on this machine: its clock and ours agree to well within the slack.
    before_ms = time.time() * 1000 - 1000
    job_id = await client.enqueue("statistics_aggregation")
    await wait_until(lambda: _state_is(admin, job_id, JobState.COMPLETED), within=10, what="job done")
    after_ms = time.time() * 1000 + 1000
    job = await admin.job(job_id)
    assert job.started_at is not None
    assert job.finished_at is not None
    assert before_ms <= job.enqueued_at <= job.started_at <= job.finished_at <= after_ms


async def test_transient_failures_are_retried_with_backoff_then_succeed(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    job_id = await client.enqueue("user_variables_update", {"fail_times": 2})
    await wait_until(lambda: _state_is(admin, job_id, JobState.COMPLETED), within=10, what="retried job done")
    job = await admin.job(job_id)
    assert job.attempts == 3
    assert [e.attempt for e in job.errors] == [1, 2]
    assert job.result == {"kind": "user_variables_update", "attempt": 3, "workedMs": 0}


async def test_exhausted_attempts_land_in_failed_with_every_error_and_traceback(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    job_id = await client.enqueue("user_variables_update", {"fail_times": 9}, attempts=3)
    await wait_until(lambda: _state_is(admin, job_id, JobState.FAILED), within=10, what="job failed")
    job = await admin.job(job_id)
    assert job.attempts == 3
    assert [e.attempt for e in job.errors] == [1, 2, 3]
    assert all("TransientError" in e.error and "Traceback" in e.traceback for e in job.errors)
    # back-off: each retry came at least base (50 ms, jitter halves it at most) after the failure
    gaps = [b.at - a.at for a, b in zip(job.errors, job.errors[1:], strict=False)]
    assert all(g >= 25 for g in gaps)


async def test_permanent_error_is_never_retried(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    job_id = await client.enqueue("user_variables_update", {"fail_permanently": True}, attempts=5)
    await wait_until(lambda: _state_is(admin, job_id, JobState.FAILED), within=10, what="job failed")
    job = await admin.job(job_id)
    assert job.attempts == 1
    assert len(job.errors) == 1
    assert "PermanentError" in job.errors[0].error


async def test_hung_job_times_out_counts_as_failed_attempt_and_worker_survives(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    hung = await client.enqueue("heavy_workflow_execution", {"duration_ms": 60_000}, attempts=1, timeout_s=0.2)
    await wait_until(lambda: _state_is(admin, hung, JobState.FAILED), within=10, what="timed-out job failed")
    assert "timeout" in (await admin.job(hung)).errors[0].error
    after = await client.enqueue("statistics_aggregation")
    await wait_until(lambda: _state_is(admin, after, JobState.COMPLETED), within=10, what="next job done")
    assert shared_worker.poll() is None
    # The worker's log names the cut-off, not the empty text of a bare TimeoutError.
    (failed,) = [line for line in shared_worker.stdout.splitlines() if hung in line and "attempt failed" in line]
    assert "TimeoutError: job ran longer than its 0.2 s timeout" in failed


async def test_paused_queue_starts_nothing_until_resumed(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    await admin.pause()
    job_id = await client.enqueue("statistics_aggregation")
    await wait_until(lambda: _paused_count(admin, 1), within=10, what="paused count")
    assert (await admin.job(job_id)).state is JobState.WAITING
    await admin.resume()
    await wait_until(lambda: _state_is(admin, job_id, JobState.COMPLETED), within=10, what="job done after resume")


async def test_retry_all_failed_runs_dead_letters_again(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    ids = [await client.enqueue("user_variables_update", {"fail_times": 1}, attempts=1) for _ in range(3)]
    await wait_until(lambda: _count(admin, "failed", 3), within=10, what="3 failed")
    assert await admin.retry_all_failed() == 3
    await wait_until(lambda: _count(admin, "completed", 3), within=10, what="3 completed after retry")
    jobs = [await admin.job(i) for i in ids]
    assert [(j.attempts, len(j.errors)) for j in jobs] == [(2, 1)] * 3


async def test_retry_one_failed_job(client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess) -> None:
    job_id = await client.enqueue("user_variables_update", {"fail_times": 1}, attempts=1)
    await wait_until(lambda: _state_is(admin, job_id, JobState.FAILED), within=10, what="failed")
    await admin.retry(job_id)
    await wait_until(lambda: _state_is(admin, job_id, JobState.COMPLETED), within=10, what="completed after retry")


async def test_progress_is_recorded_and_events_are_published(
    client: QueueClient, admin: QueueAdmin, shared_worker: ServiceProcess
) -> None:
    import asyncio

    seen: list[tuple[str, object]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async for event in admin.events(subscribed=ready):
            seen.append((event.event, event.extra.get("progress")))
            if event.event == "completed":
                return

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10)  # the SUBSCRIBE is live: nothing after it is missed
    job_id = await client.enqueue("heavy_workflow_execution", {"duration_ms": 80})
    await asyncio.wait_for(listener, 10)
    assert [e for e, _ in seen] == ["waiting", "active", "progress", "progress", "progress", "progress", "completed"]
    assert [p for e, p in seen if e == "progress"] == [25, 50, 75, 100]
    assert (await admin.job(job_id)).progress == 100


async def _state_is(admin: QueueAdmin, job_id: str, state: JobState) -> bool:
    return (await admin.job(job_id)).state is state


async def _count(admin: QueueAdmin, state: str, n: int) -> bool:
    return int((await admin.counts()).as_dict()[state]) == n


async def _paused_count(admin: QueueAdmin, n: int) -> bool:
    return (await admin.counts()).paused == n
