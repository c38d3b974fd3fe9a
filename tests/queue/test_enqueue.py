"""Enqueueing against a real Redis: ids, dedup, delays, bulk, and bad input refused whole."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from runtime.errors import AlreadyExists, InvalidArgument, PayloadTooLarge
from runtime.queue import JobRequest, JobState, QueueAdmin, QueueClient


async def test_enqueue_returns_an_id_and_the_job_waits_with_its_data(client: QueueClient, admin: QueueAdmin) -> None:
    job_id = await client.enqueue("heavy_workflow_execution", {"duration_ms": 5}, priority=7, attempts=4)
    job = await admin.job(job_id)
    assert (job.state, job.name, job.data, job.priority, job.max_attempts, job.attempts) == (
        JobState.WAITING,
        "heavy_workflow_execution",
        {"duration_ms": 5},
        7,
        4,
        0,
    )


async def test_job_data_is_stored_as_json_never_pickle(client: QueueClient, redis: Redis, admin: QueueAdmin) -> None:
    job_id = await client.enqueue("user_variables_update", {"duration_ms": 1})
    raw = await redis.execute_command("HGET", admin.keys.job(job_id), "d")
    assert json.loads(raw) == {"duration_ms": 1}


async def test_same_job_id_is_refused_while_the_job_exists(client: QueueClient, admin: QueueAdmin) -> None:
    await client.enqueue("statistics_aggregation", job_id="daily-2024-01-01")
    with pytest.raises(AlreadyExists):
        await client.enqueue("statistics_aggregation", {"duration_ms": 9}, job_id="daily-2024-01-01")
    assert (await admin.counts()).waiting == 1
    assert (await admin.job("daily-2024-01-01")).data == {}


async def test_delay_and_run_at_put_the_job_in_delayed(client: QueueClient, admin: QueueAdmin) -> None:
    await client.enqueue("statistics_aggregation", delay_s=30)
    await client.enqueue("statistics_aggregation", run_at=datetime.now(UTC) + timedelta(minutes=5))
    counts = await admin.counts()
    assert (counts.delayed, counts.waiting) == (2, 0)


async def test_bulk_enqueue_reports_duplicates_as_none(client: QueueClient, admin: QueueAdmin) -> None:
    await client.enqueue("statistics_aggregation", job_id="dup")
    ids = await client.enqueue_many(
        [JobRequest("statistics_aggregation"), JobRequest("statistics_aggregation", job_id="dup")] * 2
    )
    assert ids[1] is None
    assert ids[3] is None
    assert ids[0]
    assert ids[2]
    assert ids[0] != ids[2]
    assert (await admin.counts()).waiting == 3


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"name": "no_such_job"}, "name"),
    ({"data": {"duration_ms": float("nan")}}, "data"),
    ({"data": {"duration_ms": object()}}, "data"),
    ({"data": {"duration_ms": "abc"}}, "data.duration_ms"),
    ({"data": {"unknown_key": 1}}, "data.unknown_key"),
    ({"priority": 11}, "priority"),
    ({"priority": -1}, "priority"),
    ({"priority": 1.5}, "priority"),
    ({"delay_s": -1}, "delay"),
    ({"delay_s": float("inf")}, "delay"),
    ({"attempts": 0}, "attempts"),
    ({"job_id": "bad id with spaces"}, "job_id"),
    ({"run_at": datetime(2030, 1, 1)}, "run_at"),
]


@pytest.mark.parametrize(("override", "field"), BAD_INPUT, ids=[f for _, f in BAD_INPUT])
async def test_bad_input_names_the_field_and_enqueues_nothing(
    client: QueueClient, admin: QueueAdmin, override: dict[str, Any], field: str
) -> None:
    kwargs: dict[str, Any] = {"name": "heavy_workflow_execution", "data": {}, **override}
    with pytest.raises(InvalidArgument) as caught:
        await client.enqueue(**kwargs)
    assert caught.value.field == field
    counts = await admin.counts()
    assert counts.waiting + counts.delayed == 0


async def test_one_bad_job_in_a_bulk_enqueue_refuses_the_whole_batch(client: QueueClient, admin: QueueAdmin) -> None:
    with pytest.raises(InvalidArgument):
        await client.enqueue_many(
            [JobRequest("statistics_aggregation"), JobRequest("statistics_aggregation", priority=99)]
        )
    assert (await admin.counts()).waiting == 0


@pytest.mark.parametrize("field", ["job_id", "rate_key"])
async def test_an_id_with_a_trailing_newline_is_refused(client: QueueClient, field: str) -> None:
    request = JobRequest("heavy_workflow_execution", **{field: "order-7\n"})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as error:
        await client.submit(request)
    assert error.value.field == field


async def test_queue_events_are_valid_json_whatever_the_job(client: QueueClient, redis: Redis) -> None:
    events = redis.pubsub()
    await events.subscribe(client.spec.keys.events)
    try:
        job_id = await client.enqueue("heavy_workflow_execution", job_id="order-2024.11:7_a")
        message = None
        async with asyncio.timeout(10):
            while message is None:
                message = await events.get_message(ignore_subscribe_messages=True, timeout=1.0)
        assert json.loads(message["data"]) == {"event": "waiting", "jobId": job_id}
    finally:
        await events.aclose()


async def test_job_data_over_the_limit_is_too_large_naming_the_field(client: QueueClient, admin: QueueAdmin) -> None:
    with pytest.raises(PayloadTooLarge) as error:
        await client.enqueue("heavy_workflow_execution", {"duration_ms": "x" * (512 * 1024 + 1)})
    assert error.value.details["field"] == "data"
    assert (await admin.counts()).waiting == 0
