"""Queue stats say where each queue's jobs are: ``spool`` while a durable disk spool holds jobs of
it that are not in Redis yet, whichever replica spooled them, and ``spooled`` counts them.

Each replica has its own spool file (on Kubernetes its pod's own disk: SQLite's WAL is unsafe on
the shared network volume) and publishes its counts as a marker on the shared DATA_DIR; replicas on
one machine may share one file. While the media service itself cannot reach Redis it answers what
it knows (the spooled counts, the Redis counts ``null``) instead of an error."""

from __future__ import annotations

import os
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
from services.media.app import spool_markers_dir, spool_path
from services.media.queue_stats import MediaQueues
from services.media.queues import PROCESS_JOB, PROCESSING_QUEUE, processing_queue
from services.media.settings import MediaSettings
from services.media.spool_markers import SpoolMarkers
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


async def test_a_replica_with_a_spool_of_its_own_is_seen_through_its_marker(
    gateway: httpx.AsyncClient, media_settings: MediaSettings, unreachable: Redis, tmp_path: Path
) -> None:
    """Another pod: its own spool file (its emptyDir), its marker on the shared DATA_DIR."""
    own_spool = tmp_path / "other-pod" / "media-spool.sqlite3"
    producer = cut_off_producer(media_settings, own_spool, unreachable)
    markers = SpoolMarkers(spool_markers_dir(media_settings), own_spool, stale_after_s=15, host="other-pod")
    replica = MediaQueues(unreachable, {PROCESSING_QUEUE: producer}, interval_s=0.1, markers=markers)
    replica.start()
    try:
        for media_id in ("a" * 32, "b" * 32):
            assert (await producer.submit(JobRequest(PROCESS_JOB, {"media_id": media_id}))).spooled

        async def seen() -> dict[str, Any] | None:
            processing = (await stats(gateway))["processing"]
            return processing if processing["spooled"] == 2 else None

        during = await wait_until(seen, within=20, what="the other replica's marker read")
        assert during == {"waiting": 0, "active": 0, "completed": 0, "failed": 0, "type": "spool", "spooled": 2}
    finally:
        await replica.stop()
        await producer.close()
    # Stopped with jobs in its spool: the marker stays (the pod's restarted container flushes them).
    assert (await stats(gateway))["processing"]["type"] == "spool"

    # The pod's container restarted: the same spool, Redis reachable again.
    redis = Redis.from_url(media_settings.redis_url)
    flusher = QueueClient(processing_queue(media_settings), redis, spool=DiskSpool(own_spool))
    restarted = MediaQueues(redis, {PROCESSING_QUEUE: flusher}, interval_s=0.1, markers=markers)
    await flusher.start()
    restarted.start()
    try:

        async def flushed() -> dict[str, Any] | None:
            processing = (await stats(gateway))["processing"]
            return processing if processing["type"] == "redis" else None

        after = await wait_until(flushed, within=30, what="the other replica's spool flushed and its marker gone")
    finally:
        await restarted.stop()
        await flusher.close()
        await redis.aclose()
    assert after == {"waiting": 2, "active": 0, "completed": 0, "failed": 0, "type": "redis", "spooled": 0}
    assert list(spool_markers_dir(media_settings).glob("*.json")) == []


def test_a_marker_not_rewritten_within_its_window_is_ignored(tmp_path: Path) -> None:
    directory = tmp_path / "spools"
    gone = SpoolMarkers(directory, tmp_path / "gone.sqlite3", stale_after_s=15, host="gone-pod")
    gone.publish({PROCESSING_QUEUE: 3})
    reader = SpoolMarkers(directory, tmp_path / "mine.sqlite3", stale_after_s=15, host="this-pod")
    assert reader.others() == {PROCESSING_QUEUE: 3}
    old = gone.path.stat().st_mtime - 16
    os.utime(gone.path, (old, old))
    assert reader.others() == {}
    gone.publish({PROCESSING_QUEUE: 0})  # an empty spool has no marker
    assert not gone.path.exists()


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


def test_the_spool_is_under_data_dir_unless_media_spool_path_puts_it_elsewhere(tmp_path: Path) -> None:
    default = MediaSettings(data_dir=tmp_path)
    assert spool_path(default) == tmp_path / "media" / "spool.sqlite3"
    assert "MEDIA_SPOOL_PATH" not in default.worker_environment()  # unset stays unset in another process
    own = MediaSettings(data_dir=tmp_path, media_spool_path=tmp_path / "pod" / "spool.sqlite3")
    assert spool_path(own) == tmp_path / "pod" / "spool.sqlite3"
    assert spool_path(MediaSettings(**own.worker_environment())) == own.media_spool_path  # type: ignore[arg-type]
    assert spool_markers_dir(own) == tmp_path / "media" / "spools"  # the markers stay on the shared DATA_DIR
