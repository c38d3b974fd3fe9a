"""Read RPCs: filters, one operator across queues, queues with read-time waits, NOT_FOUND, INVALID_ARGUMENT."""

from __future__ import annotations

import time

import grpc
import pytest
from switchboard.status.v1 import status_pb2

from devsupport.status_batches import batch, channel_up, op_up, queue_up
from runtime.grpc_errors import details_from_rpc_error
from tests.status.harness import MakeStatus, RunningStatus

pb = status_pb2


@pytest.fixture
async def center_status(status: RunningStatus) -> RunningStatus:
    caller = pb.Caller(channel="PJSIP/trunk-1", caller_id_num="+4930", position=1, waiting_since=time.time() - 30)
    await status.ingest(
        batch(
            queue_up("sales", callers=[caller]),
            queue_up("support"),
            op_up("sales", "PJSIP/1001", paused=True, paused_reason="lunch"),
            op_up("support", "PJSIP/1001", status=pb.MEMBER_STATUS_IN_USE, status_code=2, in_call=True),
            op_up("sales", "PJSIP/1002"),
            op_up("support", "Local/1003@agents", status=pb.MEMBER_STATUS_RINGING, status_code=6),
            channel_up("1700000000.1", channel_name="PJSIP/trunk-1-00000001", state="Up"),
        )
    )
    return status


async def test_list_operators_filters_by_queue_status_and_pause(center_status: RunningStatus) -> None:
    stub = center_status.stub

    async def members(**filters: object) -> list[tuple[str, str]]:
        reply = await stub.ListOperators(pb.ListOperatorsRequest(**filters))  # type: ignore[arg-type]
        assert reply.meta.source == pb.SOURCE_REDIS
        return [(o.queue_name, o.member_id) for o in reply.operators]

    assert len(await members()) == 4
    assert await members(queue_name="sales") == [("sales", "PJSIP/1001"), ("sales", "PJSIP/1002")]
    assert await members(status=pb.MEMBER_STATUS_RINGING) == [("support", "Local/1003@agents")]
    assert await members(paused=True) == [("sales", "PJSIP/1001")]
    assert await members(queue_name="support", paused=False, status=pb.MEMBER_STATUS_IN_USE) == [
        ("support", "PJSIP/1001")
    ]


async def test_get_operator_returns_every_queue_row_of_the_member(center_status: RunningStatus) -> None:
    reply = await center_status.stub.GetOperator(pb.GetOperatorRequest(member_id="PJSIP/1001"))
    rows = {o.queue_name: o for o in reply.operators}
    assert set(rows) == {"sales", "support"}
    assert rows["sales"].paused
    assert rows["sales"].paused_reason == "lunch"
    assert rows["support"].in_call
    assert not rows["support"].paused
    one = await center_status.stub.GetOperator(pb.GetOperatorRequest(member_id="PJSIP/1001", queue_name="support"))
    assert [o.queue_name for o in one.operators] == ["support"]


async def test_unknown_operator_and_queue_are_not_found(center_status: RunningStatus) -> None:
    for call in (
        center_status.stub.GetOperator(pb.GetOperatorRequest(member_id="PJSIP/9999")),
        center_status.stub.GetOperator(pb.GetOperatorRequest(member_id="PJSIP/1002", queue_name="support")),
        center_status.stub.GetQueue(pb.GetQueueRequest(name="nope")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("method", "request_message", "field"),
    [
        ("GetOperator", pb.GetOperatorRequest(member_id=""), "member_id"),
        ("GetOperator", pb.GetOperatorRequest(member_id="PJSIP/1", queue_name="q" * 200), "queue_name"),
        ("ListOperators", pb.ListOperatorsRequest(status=77), "status"),  # type: ignore[arg-type]
        ("ListOperators", pb.ListOperatorsRequest(queue_name=""), "queue_name"),
        ("GetQueue", pb.GetQueueRequest(name=""), "name"),
        ("WatchSnapshot", pb.WatchSnapshotRequest(queue_names=["ok", ""]), "queue_names[1]"),
    ],
)
async def test_invalid_arguments_name_the_field(
    status: RunningStatus, method: str, request_message: object, field: str
) -> None:
    async def invoke() -> None:
        call = getattr(status.stub, method)(request_message)
        if method == "WatchSnapshot":
            async for _ in call:
                pass
        else:
            await call

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await invoke()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error.value)["field"] == field


async def test_queues_report_waiting_callers_and_longest_wait_at_read_time(center_status: RunningStatus) -> None:
    reply = await center_status.stub.ListQueues(pb.ListQueuesRequest())
    sales = {q.name: q for q in reply.queues}["sales"]
    assert sales.waiting == 1
    assert 29.0 <= sales.longest_wait <= 35.0
    one = await center_status.stub.GetQueue(pb.GetQueueRequest(name="sales"))
    assert one.queue.callers[0].caller_id_num == "+4930"
    assert [o.member_id for o in one.operators] == ["PJSIP/1001", "PJSIP/1002"]
    assert one.meta.source == pb.SOURCE_REDIS


async def test_channels_and_snapshot_carry_everything_with_meta(center_status: RunningStatus) -> None:
    channels = await center_status.stub.ListChannels(pb.ListChannelsRequest())
    assert [c.channel_name for c in channels.channels] == ["PJSIP/trunk-1-00000001"]
    snapshot = await center_status.stub.GetSnapshot(pb.GetSnapshotRequest())
    assert (len(snapshot.operators), len(snapshot.queues), len(snapshot.channels)) == (4, 2, 1)
    assert snapshot.source == pb.SOURCE_REDIS
    assert not snapshot.stale
    assert snapshot.revision == 1
    assert abs(snapshot.timestamp - time.time()) < 5


async def test_a_replica_starting_on_filled_redis_answers_from_it(
    center_status: RunningStatus, make_status: MakeStatus
) -> None:
    other = await make_status()
    snapshot = await other.stub.GetSnapshot(pb.GetSnapshotRequest())
    assert len(snapshot.operators) == 4
    assert snapshot.revision == 1
