"""Single enqueues made in the same turn of the event loop go to Redis in one call, and each
caller still gets its own answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from devsupport.ports import free_port
from runtime.errors import AlreadyExists, Unavailable
from runtime.queue import QueueAdmin, QueueClient, QueueSpec
from runtime.retry import RetryPolicy


def count_enqueue_calls(client: QueueClient) -> list[int]:
    """Wraps the client's ENQUEUE script: the number of jobs of each call, in order."""
    calls: list[int] = []
    script = client._enqueue_script

    def counting(*, keys: list[str], args: list[Any]) -> Any:
        calls.append(int(args[0]))
        return script(keys=keys, args=args)

    client._enqueue_script = counting  # type: ignore[assignment]
    return calls


async def test_concurrent_enqueues_share_one_redis_call(client: QueueClient, admin: QueueAdmin) -> None:
    calls = count_enqueue_calls(client)
    ids = await asyncio.gather(*(client.enqueue("statistics_aggregation") for _ in range(20)))
    assert calls == [20]
    assert len(set(ids)) == 20
    assert (await admin.counts()).waiting == 20


async def test_a_sequential_enqueue_is_sent_by_itself(client: QueueClient) -> None:
    calls = count_enqueue_calls(client)
    await client.enqueue("statistics_aggregation")
    await client.enqueue("statistics_aggregation")
    assert calls == [1, 1]


async def test_each_caller_of_a_shared_call_gets_its_own_answer(client: QueueClient, admin: QueueAdmin) -> None:
    results = await asyncio.gather(
        client.enqueue("statistics_aggregation", job_id="same"),
        client.enqueue("statistics_aggregation", job_id="same"),
        client.enqueue("statistics_aggregation", job_id="other"),
        return_exceptions=True,
    )
    assert results[0] == "same"
    assert isinstance(results[1], AlreadyExists)
    assert results[2] == "other"
    assert (await admin.counts()).waiting == 2


async def test_a_caller_cancelled_before_the_call_enqueues_nothing(client: QueueClient, admin: QueueAdmin) -> None:
    calls = count_enqueue_calls(client)
    gone = asyncio.create_task(client.enqueue("statistics_aggregation", job_id="gone"))
    kept = asyncio.create_task(client.enqueue("statistics_aggregation", job_id="kept"))
    await asyncio.sleep(0)  # both have joined the gathering; it is not sent yet
    gone.cancel()
    assert await kept == "kept"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert calls == [1]
    jobs, _ = await admin.jobs("waiting")
    assert [j.job_id for j in jobs] == ["kept"]


async def test_every_caller_of_a_failed_shared_call_is_told(spec: QueueSpec) -> None:
    unreachable = Redis(port=free_port(), socket_connect_timeout=0.2)
    client = QueueClient(spec, unreachable, retry=RetryPolicy(attempts=1, base=0.01, cap=0.01))
    try:
        results = await asyncio.gather(
            *(client.enqueue("statistics_aggregation") for _ in range(3)), return_exceptions=True
        )
    finally:
        await client.close()
        await unreachable.aclose()
    assert all(isinstance(r, Unavailable) for r in results)
    assert len({id(r) for r in results}) == 3  # each its own exception, not one raised in three tasks
