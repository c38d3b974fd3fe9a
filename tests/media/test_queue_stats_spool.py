"""Queue stats say where each queue's jobs are: ``spool`` while the durable disk spool holds jobs of
it that are not in Redis yet, whichever process spooled them. The service's replicas share DATA_DIR
(the RWX ``media-data`` volume) and with it the spool file, so a job another replica spooled while
it could not reach Redis shows here, and the queue reads ``redis`` again once the spool is flushed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from devsupport.ports import free_port
from devsupport.waiting import wait_until
from runtime.queue import DiskSpool, JobRequest, QueueClient
from runtime.retry import RetryPolicy
from services.media.app import spool_path
from services.media.queues import PROCESS_JOB, processing_queue
from services.media.settings import MediaSettings


@pytest.fixture
async def cut_off_replica(media_settings: MediaSettings) -> AsyncIterator[QueueClient]:
    """Another replica's media-processing producer, on the shared spool, whose Redis is unreachable."""
    unreachable = Redis(port=free_port(), socket_connect_timeout=0.5)  # nothing listens there
    spool = DiskSpool(spool_path(media_settings))
    producer = QueueClient(
        processing_queue(media_settings),
        unreachable,
        spool=spool,
        retry=RetryPolicy(attempts=1),
        redis_budget_s=1.0,
        flush_interval_s=60.0,  # it stays cut off: its own flusher does not run during the test
    )
    yield producer
    await producer.close()
    await unreachable.aclose()


async def stats(gateway: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    answer = await gateway.get("/api/admin/media/queue")
    assert answer.status_code == 200, answer.text
    data: dict[str, dict[str, Any]] = answer.json()["data"]
    return data


async def test_a_job_another_replica_spooled_shows_the_queue_as_spool_until_it_reaches_redis(
    gateway: httpx.AsyncClient, cut_off_replica: QueueClient, media_settings: MediaSettings
) -> None:
    assert {s["type"] for s in (await stats(gateway)).values()} == {"redis"}
    answer = await cut_off_replica.submit(JobRequest(PROCESS_JOB, {"media_id": "f" * 32}))
    assert answer.spooled
    during = await stats(gateway)
    assert during["processing"] == {"waiting": 0, "active": 0, "completed": 0, "failed": 0, "type": "spool"}
    assert (during["sync"]["type"], during["watermark"]["type"]) == ("redis", "redis")

    # A replica that reaches Redis flushes what the shared spool holds (as a restarted one does).
    redis = Redis.from_url(media_settings.redis_url)
    flusher = QueueClient(processing_queue(media_settings), redis, spool=DiskSpool(spool_path(media_settings)))
    await flusher.start()

    async def flushed() -> dict[str, Any] | None:
        processing = (await stats(gateway))["processing"]
        return processing if processing["type"] == "redis" else None

    after = await wait_until(flushed, within=20, what="the spooled job flushed to Redis")
    await flusher.close()
    await redis.aclose()
    assert after == {"waiting": 1, "active": 0, "completed": 0, "failed": 0, "type": "redis"}
