"""Ingest into Redis: atomic batches in one round trip, fencing, replace_all, TTLs and staleness."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from redis.asyncio import Redis
from switchboard.status.v1 import status_pb2

from runtime.grpc_errors import details_from_rpc_error
from services.status import keys
from tests.status.builders import batch, center, channel_up, op_rm, op_up, queue_up
from tests.status.conftest import MakeStatus, RunningStatus


async def test_acks_carry_sequence_and_the_revision_produced(status: RunningStatus) -> None:
    acks = await status.ingest(
        batch(op_up("sales", "PJSIP/1"), sequence=1), batch(op_up("sales", "PJSIP/2"), sequence=2)
    )
    assert [(a.sequence, a.revision) for a in acks] == [(1, 1), (2, 2)]


async def test_a_batch_is_one_evalsha_round_trip(status: RunningStatus, redis_url: str) -> None:
    monitor_client = Redis.from_url(redis_url)
    commands: list[str] = []
    async with monitor_client.monitor() as monitor:

        async def record() -> None:
            async for event in monitor.listen():
                if event.get("client_type") != "lua":
                    commands.append(event["command"].split(" ")[0].upper())

        recorder = asyncio.create_task(record())
        await asyncio.sleep(0.05)
        await status.app.service.store.apply_batch(batch(*center(200, 20, 100)))
        await asyncio.sleep(0.1)
        recorder.cancel()
    await monitor_client.aclose()
    writes = [c for c in commands if c not in {"XREAD", "PING"}]
    assert writes.count("EVALSHA") == 1
    assert [c for c in writes if c != "EVALSHA"] == []


async def test_readers_see_a_batch_all_or_nothing(status: RunningStatus, redis_url: str) -> None:
    reader = Redis.from_url(redis_url)
    seen: set[tuple[int, int]] = set()
    done = asyncio.Event()

    async def watch_counts() -> None:
        while not done.is_set():
            async with reader.pipeline(transaction=True) as pipe:
                seen.add(tuple(await pipe.hlen(keys.OPERATORS).hlen(keys.CHANNELS).execute()))

    task = asyncio.create_task(watch_counts())
    store = status.app.service.store
    for round_number in range(5):
        rows = [op_up("big", f"PJSIP/{round_number}-{i}") for i in range(400)]
        rows += [channel_up(f"{round_number}.{i}") for i in range(100)]
        await store.apply(rows, source_id="pbx1", fencing_token=1, replace_all=True)
    done.set()
    await task
    await reader.aclose()
    assert seen <= {(0, 0), (400, 100)}


def clock_token() -> int:
    """A fencing token as the leader election hands them out: a microsecond clock reading (16 digits)."""
    return time.time_ns() // 1000


async def test_a_lower_fencing_token_is_refused(status: RunningStatus) -> None:
    leader = clock_token()
    await status.ingest(batch(op_up("sales", "PJSIP/1"), token=leader))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await status.ingest(batch(op_up("sales", "PJSIP/666"), token=leader - 1))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reply = await status.stub.ListOperators(status_pb2.ListOperatorsRequest())
    assert [o.member_id for o in reply.operators] == ["PJSIP/1"]
    # The same source's leader keeps writing; another source has its own token.
    await status.ingest(
        batch(op_up("sales", "PJSIP/2"), token=leader),
        batch(op_up("x", "PJSIP/3"), token=clock_token() - 10**9, source="pbx2", sequence=2),
    )


async def test_a_refusal_names_the_highest_token_seen_to_the_last_digit(status: RunningStatus) -> None:
    leader = clock_token()
    await status.ingest(batch(op_up("sales", "PJSIP/1"), token=leader))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await status.ingest(batch(op_up("sales", "PJSIP/666"), token=leader - 1))
    details = details_from_rpc_error(error.value)
    assert (details["fencing_token"], details["highest"]) == (str(leader - 1), str(leader))


async def test_replace_all_removes_rows_missing_from_it(status: RunningStatus) -> None:
    await status.ingest(
        batch(op_up("sales", "PJSIP/1"), op_up("sales", "PJSIP/2"), queue_up("sales"), channel_up("1.1"))
    )
    await status.ingest(batch(op_up("sales", "PJSIP/2"), queue_up("sales"), replace_all=True, sequence=2))
    snapshot = await status.stub.GetSnapshot(status_pb2.GetSnapshotRequest())
    assert [o.member_id for o in snapshot.operators] == ["PJSIP/2"]
    assert [q.name for q in snapshot.queues] == ["sales"]
    assert list(snapshot.channels) == []


async def test_removals_delete_rows(status: RunningStatus) -> None:
    await status.ingest(batch(op_up("sales", "PJSIP/1"), op_up("support", "PJSIP/1")))
    await status.ingest(batch(op_rm("sales", "PJSIP/1"), sequence=2))
    reply = await status.stub.GetOperator(status_pb2.GetOperatorRequest(member_id="PJSIP/1"))
    assert [o.queue_name for o in reply.operators] == ["support"]


async def test_invalid_batch_is_refused_naming_the_field_and_earlier_batches_stay(status: RunningStatus) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await status.ingest(batch(op_up("sales", "PJSIP/1")), batch(op_up("sales", ""), sequence=2))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error.value)["field"] == "changes[0].operator_upserted.member_id"
    reply = await status.stub.ListOperators(status_pb2.ListOperatorsRequest())
    assert [o.member_id for o in reply.operators] == ["PJSIP/1"]


async def test_sequence_must_increase_within_a_stream(status: RunningStatus) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await status.ingest(batch(sequence=3), batch(sequence=3))
    assert details_from_rpc_error(error.value)["field"] == "sequence"


async def test_every_batch_refreshes_the_ttl_of_the_live_keys(status: RunningStatus, redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    await status.ingest(batch(op_up("sales", "PJSIP/1"), queue_up("sales"), channel_up("1.1")))
    await client.expire(keys.OPERATORS, 5)
    await status.ingest(batch(sequence=2))  # an empty heartbeat
    ttl = status.app.settings.status_live_ttl_seconds
    for key in keys.LIVE_KEYS:
        assert ttl - 2 <= await client.ttl(key) <= ttl
    assert await client.ttl(keys.META) == -1
    await client.aclose()


async def test_reads_turn_stale_when_the_ingest_goes_quiet_and_fresh_on_a_heartbeat(make_status: MakeStatus) -> None:
    status = await make_status(status_stale_after_seconds=0.3)
    await status.ingest(batch(op_up("sales", "PJSIP/1")))
    await asyncio.sleep(0.05)
    fresh = await status.stub.GetSnapshot(status_pb2.GetSnapshotRequest())
    assert not fresh.stale
    await asyncio.sleep(0.4)
    stale = await status.stub.ListOperators(status_pb2.ListOperatorsRequest())
    assert stale.meta.stale
    assert stale.meta.last_ingest_at == pytest.approx(fresh.last_ingest_at)
    await status.ingest(batch(sequence=2))
    await asyncio.sleep(0.05)
    again = await status.stub.GetSnapshot(status_pb2.GetSnapshotRequest())
    assert not again.stale
    assert again.revision == fresh.revision  # a heartbeat changes nothing but freshness
