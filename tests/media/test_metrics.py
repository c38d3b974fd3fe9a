"""The media metrics, read the way Prometheus does: scraping ``/metrics`` over HTTP.

The service, its workers and this test share one process (one registry), so counters are compared
before and after; the queue sizes are absolute (each test has its own Redis database).
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from devsupport.waiting import wait_until
from runtime.metrics import MetricsServer, start_metrics_server
from runtime.queue import QueueClient, Worker
from services.media.queues import SYNC_JOB, sync_queue
from services.media.settings import MediaSettings
from tests.media.images import shared
from tests.media.support import MediaClient, S3Server, with_s3

PHOTO = shared("sk_rocket.jpg")


@pytest.fixture
def media_settings(media_settings: MediaSettings, s3_server: S3Server) -> MediaSettings:
    return with_s3(media_settings, s3_server).model_copy(update={"media_queue_metrics_interval_s": 0.1})


@pytest.fixture
def metrics_url() -> Iterator[str]:
    server = start_metrics_server(0)
    assert isinstance(server, MetricsServer)
    yield f"http://127.0.0.1:{server.port}/metrics"
    server.close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample: (name, sorted labels) → value."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scraped(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return await asyncio.to_thread(scrape, url)


async def test_queue_sizes_count_the_jobs_waiting_for_a_worker(
    media: MediaClient, media_settings: MediaSettings, metrics_url: str
) -> None:
    await media.upload(PHOTO, owner_id="metrics")  # no processing worker runs: it waits
    redis = Redis.from_url(media_settings.redis_url)
    sync = QueueClient(sync_queue(media_settings), redis)  # no sync worker runs either
    for n in range(2):
        await sync.enqueue(SYNC_JOB, {"media_id": "0" * 32}, job_id=f"metrics-sync-{n}")
    await sync.close()
    await redis.aclose()

    async def sizes() -> tuple[float, float] | None:
        samples = await scraped(metrics_url)
        got = (samples[("media_processing_queue_size", ())], samples[("media_sync_queue_size", ())])
        return got if got == (1.0, 2.0) else None

    assert await wait_until(sizes, within=20, what="queue sizes 1 and 2 scraped") == (1.0, 2.0)


async def test_a_processed_upload_counts_ready_and_its_duration_then_its_sync(
    media: MediaClient, media_worker: Worker, sync_worker: Worker, metrics_url: str
) -> None:
    before = await scraped(metrics_url)
    answer = await media.upload(PHOTO, owner_id="metrics-ready")

    async def synced() -> bool:
        return (await media.get(answer.media.media_id)).synced_to_s3

    await wait_until(synced, within=45, what="the upload processed and synced")
    after = await scraped(metrics_url)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("media_processing_jobs_total", status="ready") == 1
    assert grew("media_processing_duration_seconds_count") == 1
    assert grew("media_processing_duration_seconds_sum") > 0
    assert grew("media_sync_jobs_total", status="completed", operation="upload") == 1
