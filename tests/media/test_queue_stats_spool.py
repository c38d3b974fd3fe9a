"""Queue stats say where each queue's jobs are: ``spool`` while the durable disk spool holds jobs of
it that are not in Redis yet, whichever replica spooled them (the replicas share the spool file on
DATA_DIR), and ``spooled`` counts them. While the media service itself cannot reach Redis it answers what
it knows (the spooled counts, the Redis counts ``null``) instead of an error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from devsupport.ports import free_port
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from runtime.queue import DiskSpool, JobRequest, QueueClient
from runtime.retry import RetryPolicy
from services.media.app import spool_path
from services.media.queues import PROCESS_JOB, processing_queue
from services.media.settings import MediaSettings
from tests.media.images import shared

UNKNOWN = {"waiting": None, "active": None, "completed": None, "failed": None}


def cut_off_producer(settings: MediaSettings, spool: Path, unreachable: Redis) -> QueueClient:
    """A media-processing producer on ``spool`` whose Redis is unreachable; its own flusher does
    not run during the test."""
    return QueueClient(
        processing_queue(settings),
        unreachable,
        spool=DiskSpool(spool),
        retry=RetryPolicy(attempts=1),
        redis_budget_s=1.0,
        flush_interval_s=60.0,
    )


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    redis = Redis(port=free_port(), socket_connect_timeout=0.5)  # nothing listens there
    yield redis
    await redis.aclose()


@pytest.fixture
async def cut_off_replica(media_settings: MediaSettings, unreachable: Redis) -> AsyncIterator[QueueClient]:
    """Another replica on this machine, sharing the service's spool file, cut off from Redis."""
    producer = cut_off_producer(media_settings, spool_path(media_settings), unreachable)
    yield producer
    await producer.close()


async def stats(gateway: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    answer = await gateway.get("/api/admin/media/queue")
    assert answer.status_code == 200, answer.text
    data: dict[str, dict[str, Any]] = answer.json()["data"]
    return data


async def flushed_by(settings: MediaSettings, spool: Path, gateway: httpx.AsyncClient) -> dict[str, Any]:
    """The processing queue's stats once a producer on ``spool`` that reaches Redis has flushed it
    (as a restarted replica does)."""
    redis = Redis.from_url(settings.redis_url)
    flusher = QueueClient(processing_queue(settings), redis, spool=DiskSpool(spool))
    await flusher.start()

    async def flushed() -> dict[str, Any] | None:
        processing = (await stats(gateway))["processing"]
        return processing if processing["type"] == "redis" else None

    try:
        after: dict[str, Any] = await wait_until(flushed, within=30, what="the spooled job flushed to Redis")
    finally:
        await flusher.close()
        await redis.aclose()
    return after


async def test_a_job_another_replica_spooled_shows_the_queue_as_spool_until_it_reaches_redis(
    gateway: httpx.AsyncClient, cut_off_replica: QueueClient, media_settings: MediaSettings
) -> None:
    assert {s["type"] for s in (await stats(gateway)).values()} == {"redis"}
    answer = await cut_off_replica.submit(JobRequest(PROCESS_JOB, {"media_id": "f" * 32}))
    assert answer.spooled
    during = await stats(gateway)
    assert during["processing"] == {
        "waiting": 0,
        "active": 0,
        "completed": 0,
        "failed": 0,
        "type": "spool",
        "spooled": 1,
    }
    assert (during["sync"]["type"], during["watermark"]["type"]) == ("redis", "redis")

    after = await flushed_by(media_settings, spool_path(media_settings), gateway)
    assert after == {"waiting": 1, "active": 0, "completed": 0, "failed": 0, "type": "redis", "spooled": 0}


async def test_without_redis_the_service_answers_the_spooled_counts_and_null_for_the_rest(
    gateway: httpx.AsyncClient, redis_server: RedisServer
) -> None:
    redis_server.stop()
    try:
        body, content_type = _form(shared("sk_rocket.jpg"))
        upload = await gateway.post(
            "/api/admin/media/upload-async", content=body, headers={"Content-Type": content_type}
        )
        assert upload.status_code == 202, upload.text  # spooled: the job reaches Redis when it is back
        answer = await gateway.get("/api/admin/media/queue")
        assert answer.status_code == 200, answer.text
        during = answer.json()["data"]
    finally:
        redis_server.start()
    assert during == {
        "processing": {**UNKNOWN, "type": "spool", "spooled": 1},
        "sync": {**UNKNOWN, "type": "redis", "spooled": 0},
        "watermark": {**UNKNOWN, "type": "redis", "spooled": 0},
    }


def _form(data: bytes) -> tuple[bytes, str]:
    boundary = "sbqueuestats"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"
