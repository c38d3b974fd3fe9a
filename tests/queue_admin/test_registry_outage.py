"""A declared queue stays declared through a Redis that restarted without its data: UNAVAILABLE
(503) until a worker heartbeats it back, never NOT_FOUND (404); and a stalled registry read does
not hold an enqueue past the caller's deadline."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from redis.asyncio import Redis
from switchboard.queue.v1 import queue_pb2

from runtime.queue import QueueSpec
from runtime.queue.registry import REGISTRY_KEY, declare
from tests.queue_admin.harness import AdminServer, start_admin_server, stop_admin_server

pytestmark = pytest.mark.usefixtures("declared")


def enqueue_request() -> queue_pb2.EnqueueJobRequest:
    return queue_pb2.EnqueueJobRequest(queue="workflow", name="heavy_workflow_execution", data_json="{}")


async def test_a_declared_queue_lost_by_redis_answers_unavailable_until_a_worker_declares_it_again(
    redis_url: str, redis: Redis, spec: QueueSpec, tmp_path: Path
) -> None:
    admin = await start_admin_server(redis_url, tmp_path)
    try:
        await admin.stub.GetQueue(queue_pb2.GetQueueRequest(queue="workflow"), timeout=5)
        await redis.delete(REGISTRY_KEY)  # as a Redis restarted without persistence leaves it
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await admin.stub.EnqueueJob(enqueue_request(), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "lost its registry entry" in (error.value.details() or "")
        await declare(redis, spec)  # a worker's heartbeat
        reply = await admin.stub.EnqueueJob(enqueue_request(), timeout=5)
        assert reply.job_id
    finally:
        await stop_admin_server(admin)


async def test_an_admin_restarted_while_redis_lost_the_registry_still_knows_the_queue(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    first = await start_admin_server(redis_url, tmp_path)
    await first.stub.ListQueues(queue_pb2.ListQueuesRequest(), timeout=5)
    await stop_admin_server(first)
    await first.app.close()
    await redis.delete(REGISTRY_KEY)
    second = await start_admin_server(redis_url, tmp_path)  # same data dir: the same spool file
    try:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await second.stub.GetQueue(queue_pb2.GetQueueRequest(queue="workflow"), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await stop_admin_server(second)


async def test_a_queue_never_declared_is_still_not_found(admin_server: AdminServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await admin_server.stub.GetQueue(queue_pb2.GetQueueRequest(queue="nope"), timeout=5)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
