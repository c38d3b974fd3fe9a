"""Redis down: enqueues are spooled durably on disk and flushed in order when Redis is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from runtime.queue import DiskSpool, QueueAdmin, QueueClient, QueueSpec
from runtime.queue.metrics import BACKEND_SWITCHES
from runtime.retry import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=2, base=0.01, cap=0.01)


def switches(src: str, dst: str) -> float:
    return BACKEND_SWITCHES.labels(src, dst)._value.get()


async def test_enqueues_during_an_outage_are_flushed_in_order_when_redis_returns(
    spec: QueueSpec, redis: Redis, admin: QueueAdmin, redis_server: RedisServer, tmp_path: Path
) -> None:
    client = QueueClient(spec, redis, retry=FAST_RETRY, spool=DiskSpool(tmp_path / "spool.db"))
    before = (switches("redis", "spool"), switches("spool", "redis"))
    await client.enqueue("statistics_aggregation", job_id="before-outage")
    redis_server.stop()
    ids = [await client.enqueue("statistics_aggregation", {"duration_ms": i}, job_id=f"s{i}") for i in range(5)]
    assert ids == [f"s{i}" for i in range(5)]
    assert (client.health(), client.spooled()) == ("degraded", 5)
    assert switches("redis", "spool") == before[0] + 1
    redis_server.start()  # an empty Redis: the pre-outage job is gone with it, the spooled ones are not
    await wait_until(lambda: _drained(client), within=10, what="spool flushed")
    waiting, _ = await admin.jobs("waiting")
    assert [j.job_id for j in waiting] == ids
    assert [(await admin.job(job_id)).data for job_id in ids] == [{"duration_ms": i} for i in range(5)]
    assert switches("spool", "redis") == before[1] + 1
    await client.close()


async def test_a_spool_left_by_a_crashed_producer_is_flushed_by_the_next_one(
    spec: QueueSpec, redis: Redis, admin: QueueAdmin, redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.stop()
    first = QueueClient(spec, redis, retry=FAST_RETRY, spool=DiskSpool(tmp_path / "spool.db"))
    await first.enqueue("statistics_aggregation", job_id="survivor")
    await first.close()
    redis_server.start()
    second = QueueClient(spec, redis, retry=FAST_RETRY, spool=DiskSpool(tmp_path / "spool.db"))
    assert second.health() == "degraded"
    await second.start()
    await wait_until(lambda: _drained(second), within=10, what="spool flushed")
    assert (await admin.job("survivor")).name == "statistics_aggregation"
    await second.close()


async def test_without_a_spool_an_outage_raises_unavailable(
    spec: QueueSpec, redis: Redis, redis_server: RedisServer
) -> None:
    from runtime.errors import Unavailable

    client = QueueClient(spec, redis, retry=FAST_RETRY)
    redis_server.stop()
    with pytest.raises(Unavailable, match="redis unreachable"):
        await client.enqueue("statistics_aggregation")


async def test_a_close_cancelled_while_the_flusher_winds_down_is_cancelled_not_swallowed(
    spec: QueueSpec, redis: Redis, tmp_path: Path
) -> None:
    client = QueueClient(spec, redis, retry=FAST_RETRY, spool=DiskSpool(tmp_path / "spool.db"))
    winding_down = asyncio.Event()

    async def slow_to_stop() -> None:  # a flusher finishing a Redis call after its cancel
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            winding_down.set()
            await asyncio.sleep(3600)

    flusher = client._flusher = asyncio.create_task(slow_to_stop())
    closing = asyncio.create_task(client.close())
    await winding_down.wait()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    flusher.cancel()
    await asyncio.wait([flusher])


async def _drained(client: QueueClient) -> bool:
    return client.spooled() == 0 and client.health() == "ok"
