"""A job listing carries each job's metadata, not its data or result: nine jobs at the payload
limit list within one gRPC message, and the job itself still has its data. Active jobs are listed
and counted without the pin of their set."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from devsupport.waiting import wait_until
from runtime.queue import QueueAdmin, QueueClient, QueueSpec, Worker
from services.queue_admin.convert import job_pb

GRPC_MESSAGE_LIMIT = 4 * 1024 * 1024


async def blob_job(ctx: dict[str, Any], blob: str) -> None:
    return None


async def test_a_listing_leaves_out_data_so_nine_jobs_at_the_payload_limit_fit_one_message(redis: Redis) -> None:
    spec = QueueSpec("blobs", [blob_job])
    blob = "x" * (spec.max_payload_bytes - 100)
    client = QueueClient(spec, redis)
    try:
        ids = [await client.enqueue("blob_job", {"blob": blob}) for _ in range(9)]
    finally:
        await client.close()
    admin = QueueAdmin(spec, redis)
    listed, total = await admin.jobs("waiting", page_size=50)
    assert total == 9
    assert sorted(job.job_id for job in listed) == sorted(ids)
    assert all(job.data == {} and job.result is None and job.name == "blob_job" for job in listed)
    assert sum(job_pb(job).ByteSize() for job in listed) < GRPC_MESSAGE_LIMIT // 100
    assert (await admin.job(ids[0])).data == {"blob": blob}


async def test_active_jobs_are_counted_and_listed_without_the_pin_that_keeps_their_set_a_skiplist(
    redis: Redis,
) -> None:
    release = asyncio.Event()

    async def held_job(ctx: dict[str, Any]) -> None:
        await release.wait()

    spec = QueueSpec("held", [held_job], concurrency=5)
    client, admin = QueueClient(spec, redis), QueueAdmin(spec, redis)
    worker = Worker(spec, redis)
    running = asyncio.create_task(worker.run())
    try:
        ids = [await client.enqueue("held_job") for _ in range(3)]
        await wait_until(lambda: _active_is(admin, 3), within=10, what="three jobs active")
        listed, total = await admin.jobs("active", page_size=50)
        assert (total, sorted(job.job_id for job in listed)) == (3, sorted(ids))
        assert await redis.object("encoding", spec.keys.active) == b"skiplist"
        release.set()
        await wait_until(lambda: _active_is(admin, 0), within=10, what="the jobs done")
        assert await admin.jobs("active", page_size=50) == ([], 0)
        assert await redis.zcard(spec.keys.active) == 1  # the pin stays: the set stays a skiplist
    finally:
        release.set()
        worker.stop()
        await asyncio.wait_for(running, 10)
        await client.close()


async def _active_is(admin: QueueAdmin, n: int) -> bool:
    return (await admin.counts()).active == n
