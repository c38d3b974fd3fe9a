"""runtime.queue's events API: watching one queue, every queue, and decoding a channel's message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from runtime.queue import QueueClient, QueueEvent, QueueSpec, decode_event, watch_events
from runtime.queue.keys import QueueKeys


async def _first(events: AsyncIterator[QueueEvent]) -> QueueEvent:
    async for event in events:
        return event
    raise AssertionError("the event stream ended")


async def _watch_then_enqueue(redis: Redis, client: QueueClient, queues: list[str]) -> QueueEvent:
    subscribed = asyncio.Event()
    watcher = asyncio.create_task(_first(watch_events(redis, queues, subscribed=subscribed)))
    await asyncio.wait_for(subscribed.wait(), 10)
    job_id = await client.enqueue("statistics_aggregation", job_id="watched-1")
    event = await asyncio.wait_for(watcher, 10)
    assert event.job_id == job_id
    return event


async def test_watching_a_queue_yields_its_decoded_events(redis: Redis, client: QueueClient, spec: QueueSpec) -> None:
    event = await _watch_then_enqueue(redis, client, [spec.name])
    assert (event.queue, event.event) == (spec.name, "waiting")


async def test_watching_every_queue_covers_a_queue_named_nowhere(redis: Redis, client: QueueClient) -> None:
    event = await _watch_then_enqueue(redis, client, [])
    assert event.queue == client.spec.name


def test_a_message_decodes_to_its_queue_and_event() -> None:
    event = decode_event(QueueKeys("media-processing").events.encode(), b'{"event":"failed","jobId":"j1","error":"x"}')
    assert event == QueueEvent("media-processing", "failed", "j1", {"error": "x"})


def test_a_channel_that_is_no_queues_event_channel_decodes_to_nothing() -> None:
    assert decode_event("sb:status:v1:changes", b"{}") is None


def test_an_unreadable_message_is_refused() -> None:
    with pytest.raises(json.JSONDecodeError):
        decode_event(QueueKeys("q").events, b"not json")
