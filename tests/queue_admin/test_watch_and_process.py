"""WatchEvents (live job events, filtered by queue, ending on server drain) and the entry point."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import grpc.aio
import pytest
from redis.asyncio import Redis
from switchboard.queue.v1 import queue_pb2 as Q
from switchboard.queue.v1 import queue_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port
from devsupport.procs import SpawnService, health_status
from devsupport.streams import next_message
from runtime.grpc_errors import details_from_rpc_error
from runtime.queue import QueueSpec
from runtime.queue.registry import declare
from tests.queue_admin.harness import AdminServer, StartWorker, start_admin_server

SERVICE = "switchboard.queue.v1.QueueAdmin"


async def subscribed(call: grpc.aio.UnaryStreamCall[Q.WatchEventsRequest, Q.JobEvent]) -> None:
    """Read the stream's first message: it says the subscription is live."""
    first = await asyncio.wait_for(next_message(call), 10)
    assert (first.subscribed, first.event, first.queue, first.job_id) == (True, "subscribed", "", "")
    assert first.at_ms > 0


async def next_events(call: grpc.aio.UnaryStreamCall, n: int) -> list[Q.JobEvent]:
    got: list[Q.JobEvent] = []
    async with asyncio.timeout(10):
        while len(got) < n:
            got.append(await next_message(call))
    return got


async def test_watch_streams_a_job_through_its_lifecycle(
    admin_server: AdminServer, declared: QueueSpec, start_worker: StartWorker
) -> None:
    await start_worker()
    call = admin_server.stub.WatchEvents(Q.WatchEventsRequest(queues=["workflow"]))
    await subscribed(call)  # the subscription is live from here on
    request = Q.EnqueueJobRequest(queue="workflow", name="user_variables_update", data_json='{"duration_ms": 40}')
    job_id = (await admin_server.stub.EnqueueJob(request, timeout=5)).job_id
    seen: list[Q.JobEvent] = []
    async with asyncio.timeout(10):
        while not seen or seen[-1].event != "completed":
            seen.append(await next_message(call))
    call.cancel()
    assert {e.job_id for e in seen} == {job_id}
    kinds = [e.event for e in seen]
    assert kinds[0] == "waiting"
    assert "active" in kinds
    assert kinds[-1] == "completed"
    progress = [json.loads(e.detail_json) for e in seen if e.event == "progress"]
    assert progress, kinds
    assert all(e.queue == "workflow" and e.at_ms > 0 for e in seen)


async def test_watch_filters_by_queue(admin_server: AdminServer, declared: QueueSpec, redis_url: str) -> None:
    other = QueueSpec(name="reports", functions=declared.functions)
    async with Redis.from_url(redis_url) as redis:
        await declare(redis, other)
    only_reports = admin_server.stub.WatchEvents(Q.WatchEventsRequest(queues=["reports"]))
    everything = admin_server.stub.WatchEvents(Q.WatchEventsRequest())
    await subscribed(only_reports)
    await subscribed(everything)
    for queue in ("workflow", "reports"):
        await admin_server.stub.EnqueueJob(
            Q.EnqueueJobRequest(queue=queue, name="statistics_aggregation", job_id=f"{queue}-1"), timeout=5
        )
    await admin_server.stub.PauseQueue(Q.QueueRef(queue="reports"), timeout=5)
    assert [(e.queue, e.event, e.job_id) for e in await next_events(only_reports, 2)] == [
        ("reports", "waiting", "reports-1"),
        ("reports", "paused", "*"),
    ]
    assert [(e.queue, e.job_id) for e in await next_events(everything, 2)] == [
        ("workflow", "workflow-1"),
        ("reports", "reports-1"),
    ]
    only_reports.cancel()
    everything.cancel()


async def test_open_watch_streams_end_cleanly_when_the_server_drains(redis_url: str, tmp_path: Path) -> None:
    admin = await start_admin_server(redis_url, tmp_path)
    call = admin.stub.WatchEvents(Q.WatchEventsRequest())
    await subscribed(call)
    await admin.server.stop()
    assert await call.read() == grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK  # ended by the servicer, not cancelled by the drain
    await admin.channel.close()


async def test_a_bad_watch_filter_is_invalid_argument(admin_server: AdminServer) -> None:
    call = admin_server.stub.WatchEvents(Q.WatchEventsRequest(queues=["no spaces allowed"]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(caught.value)["field"] == "queues"


async def test_a_watch_of_an_undeclared_queue_is_not_found_at_once(
    admin_server: AdminServer, declared: QueueSpec
) -> None:
    call = admin_server.stub.WatchEvents(Q.WatchEventsRequest(queues=["workflow", "nope"]), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(call.read(), 10)  # answered long before the call's deadline
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_from_rpc_error(caught.value)["queue"] == "nope"


def test_the_process_serves_every_declared_queue_and_stops_on_sigterm(
    spawn: SpawnService, redis_url: str, tmp_path: Path, declared: QueueSpec
) -> None:
    address = f"127.0.0.1:{free_port()}"
    process = spawn(
        "services.queue_admin",
        env={"QUEUE_ADMIN_ADDR": address, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "INFO"},
    )
    process.wait_serving(address, SERVICE)
    with sync_channel(address) as channel:
        stub = queue_pb2_grpc.QueueAdminStub(channel)
        assert [q.name for q in stub.ListQueues(Q.ListQueuesRequest(), timeout=5).queues] == ["workflow"]
    assert health_status(address, SERVICE) == "SERVING"
    assert process.stop() == 0
    assert "server stopped" in process.output()
