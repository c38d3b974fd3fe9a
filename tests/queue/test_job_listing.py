"""A job listing carries each job's metadata, not its data or result: nine jobs at the payload
limit list within one gRPC message, and the job itself still has its data."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from runtime.queue import QueueAdmin, QueueClient, QueueSpec
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
