"""A claim hands each job to the worker exactly as it was enqueued, in one NUL-joined reply, and
says why it took nothing (paused, held by a provider's retry-after)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import DataError

from runtime.queue import JobState, QueueAdmin, QueueClient, QueueSpec, RateLimit, Worker
from runtime.queue.codec import encode_result
from runtime.queue.execution import claim_reply, complete_args
from runtime.retry import RetryPolicy


async def deliver(ctx: dict[str, Any], text: str, to: list[str], meta: dict[str, Any]) -> None:
    return None


def deliveries() -> QueueSpec:
    return QueueSpec("claims", [deliver], key_rate_limit=RateLimit.parse("100/1s"), concurrency=10)


# Text a field separator or a framing could trip over: quotes, escapes, newlines, NUL, CR/LF,
# non-ASCII, an emoji, and a JSON-looking string.
AWKWARD = 'quote " backslash \\ nl \n nul \x00 crlf \r\n é ß 中 🎧 {"event":"x"} \u2028'


async def test_a_claim_returns_each_job_exactly_as_it_was_enqueued(redis: Redis) -> None:
    spec = deliveries()
    client, admin = QueueClient(spec, redis), QueueAdmin(spec, redis)
    try:
        plain = await client.enqueue("deliver", {"text": AWKWARD, "to": ["a", "b"], "meta": {}})
        tuned = await client.enqueue(
            "deliver",
            {"text": "", "to": [], "meta": {"n": 1.5, "deep": [None, True, {"k": AWKWARD}]}},
            job_id="order:42_x-y.z",
            priority=3,
            attempts=5,
            rate_key="tenant-7",
            backoff=RetryPolicy(attempts=5, base=0.25, cap=4.0, multiplier=3.0, jitter=0.1),
            timeout_s=2.5,
        )
    finally:
        await client.close()
    status, info, jobs = await Worker(spec, redis).claim(10)
    assert (status, info) == (0, -1)
    by_id = {job.job_id: job for job in jobs}
    assert list(by_id) == [tuned, plain]  # priority 3 before priority 0
    for job_id, job in by_id.items():
        stored = await admin.job(job_id)
        assert (job.name, job.data, job.attempt, job.max_attempts, job.enqueued_at) == (
            stored.name,
            stored.data,
            1,
            stored.max_attempts,
            stored.enqueued_at,
        )
    assert by_id[plain].data == {"text": AWKWARD, "to": ["a", "b"], "meta": {}}
    assert by_id[plain].options == {}
    assert by_id[tuned].max_attempts == 5
    assert (by_id[tuned].options["b"], by_id[tuned].options["to"]) == ([0.25, 4.0, 3.0, 0.1], 2.5)


async def test_a_second_attempt_is_claimed_with_its_attempt_counted(redis: Redis) -> None:
    spec = deliveries()
    client = QueueClient(spec, redis)
    try:
        job_id = await client.enqueue("deliver", {"text": "t", "to": [], "meta": {}})
    finally:
        await client.close()
    worker = Worker(spec, redis)
    (first,) = (await worker.claim(1))[2]
    # The attempt went back as a requeue does: not counted, head of its priority.
    assert await worker._put_back(keys=[spec.keys.prefix], args=[worker.worker_id, job_id]) == 1
    # as after three failed attempts: the last one's lease is kept in 'l'
    await redis.execute_command("HSET", spec.keys.job(job_id), "l", "w\x003\x001700000000000")
    (again,) = (await worker.claim(1))[2]
    assert (first.attempt, again.job_id, again.attempt) == (1, job_id, 4)


async def test_a_running_job_reads_with_its_running_attempt_and_keeps_it_once_completed(redis: Redis) -> None:
    spec = deliveries()
    client, admin = QueueClient(spec, redis), QueueAdmin(spec, redis)
    try:
        job_id = await client.enqueue("deliver", {"text": "t", "to": [], "meta": {}})
    finally:
        await client.close()
    worker = Worker(spec, redis)
    (claimed,) = (await worker.claim(1))[2]
    running = await admin.job(job_id)
    (listed,), _ = await admin.jobs("active")
    assert (running.state, running.attempts, listed.attempts) == (JobState.ACTIVE, 1, 1)
    assert running.started_at is not None
    assert running.started_at >= running.enqueued_at
    assert listed.started_at == running.started_at
    args = complete_args(worker.worker_id, spec.retention.completed, [(job_id, claimed.attempt, encode_result(None))])
    assert await worker._complete(keys=[spec.keys.prefix], args=args) == []
    done = await admin.job(job_id)
    (listed,), _ = await admin.jobs("completed")
    assert done.finished_at is not None
    assert done.finished_at >= running.started_at
    assert (listed.finished_at, listed.attempts, listed.started_at) == (done.finished_at, 1, running.started_at)
    assert (done.state, done.attempts, done.started_at, done.result) == (
        JobState.COMPLETED,
        1,
        running.started_at,
        None,
    )


async def test_completions_beyond_the_retention_drop_the_oldest_finished_jobs_and_their_hashes(redis: Redis) -> None:
    spec = deliveries()
    client, admin = QueueClient(spec, redis), QueueAdmin(spec, redis)
    try:
        # ids in enqueue order as text too: two finishing in the same ms are ordered by id
        ids = [await client.enqueue("deliver", {"text": "t", "to": [], "meta": {}}, job_id=f"d{i}") for i in range(5)]
    finally:
        await client.close()
    worker = Worker(spec, redis)
    claimed = (await worker.claim(5))[2]
    keep = 3
    for batch in (claimed[:2], claimed[2:]):  # the first two finish first: the oldest
        args = complete_args(worker.worker_id, keep, [(job.job_id, job.attempt, encode_result(None)) for job in batch])
        assert await worker._complete(keys=[spec.keys.prefix], args=args) == []
    listed, _ = await admin.jobs("completed")
    assert sorted(job.job_id for job in listed) == sorted(ids[2:])
    assert [await redis.exists(spec.keys.job(job_id)) for job_id in ids] == [0, 0, 1, 1, 1]


async def test_a_completion_batch_mixing_none_and_other_results_stores_each_jobs_own(redis: Redis) -> None:
    spec = deliveries()
    client, admin = QueueClient(spec, redis), QueueAdmin(spec, redis)
    try:
        ids = [await client.enqueue("deliver", {"text": "t", "to": [], "meta": {}}) for _ in range(5)]
    finally:
        await client.close()
    worker = Worker(spec, redis)
    claimed = (await worker.claim(5))[2]
    retried = claimed.pop()
    entry = '{"attempt":1,"error":"e","traceback":"","at":0}'
    fail: list[str | int] = [worker.worker_id, retried.job_id, retried.attempt, entry, 0, 10]
    assert await worker._fail(keys=[spec.keys.prefix], args=fail) == 1
    (again,) = (await worker.claim(1))[2]
    claimed.append(again)
    results: list[Any] = [{"sent": 1}, None, [AWKWARD, 2.5], None, None]
    done = [(job.job_id, job.attempt, encode_result(result)) for job, result in zip(claimed, results, strict=True)]
    args = complete_args(worker.worker_id, spec.retention.completed, done)
    # first attempts returning None send their id alone, other Nones id and attempt, the rest all three
    assert (again.attempt, args[2:5]) == (2, [2, 1, 2])
    assert await worker._complete(keys=[spec.keys.prefix], args=args) == []
    stored = {job_id: await admin.job(job_id) for job_id in ids}
    assert {job.job_id: stored[job.job_id].result for job in claimed} == {
        job.job_id: result for job, result in zip(claimed, results, strict=True)
    }
    assert {job.state for job in stored.values()} == {JobState.COMPLETED}
    assert stored[again.job_id].attempts == 2


def test_a_worker_id_may_not_hold_a_nul() -> None:
    with pytest.raises(ValueError, match="may not hold a NUL"):
        Worker(deliveries(), Redis(), worker_id="host:1\x00x")


async def test_a_paused_queue_claims_nothing_and_says_paused(redis: Redis) -> None:
    spec = deliveries()
    client, admin = QueueClient(spec, redis), QueueAdmin(spec, redis)
    try:
        await client.enqueue("deliver", {"text": "t", "to": [], "meta": {}})
    finally:
        await client.close()
    await admin.pause()
    assert await Worker(spec, redis).claim(5) == (1, -1, [])


async def test_a_held_queue_claims_nothing_and_says_for_how_long(redis: Redis) -> None:
    spec = deliveries()
    client = QueueClient(spec, redis)
    try:
        await client.enqueue("deliver", {"text": "t", "to": [], "meta": {}})
    finally:
        await client.close()
    await redis.set(spec.keys.hold, 1, px=60_000)
    status, info, jobs = await Worker(spec, redis).claim(5)
    assert (status, jobs) == (2, [])
    assert 0 < info <= 60_000


@pytest.mark.parametrize(
    "reply",
    [b"", b"0", b"0\x00-1\x00id\x001\x000\x003\x00123\x00\x00deliver\x00", b"0\x00-1\x00" + b"\x00".join([b"x"] * 10)],
)
def test_a_claim_reply_that_is_not_whole_jobs_is_a_data_error(reply: bytes) -> None:
    with pytest.raises(DataError, match=r"claim reply of \d+ fields is not status, info and 9 a job"):
        claim_reply(reply)
