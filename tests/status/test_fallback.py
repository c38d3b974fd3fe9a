"""The database: written through from resyncs, answering when Redis is down, seeding, SyncStatus, Resync."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from redis.asyncio import Redis
from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from switchboard.status.v1 import status_pb2

from devsupport.ports import ANY_LOOPBACK_PORT
from devsupport.redis_server import RedisServer
from devsupport.status_batches import batch, channel_up, op_up, queue_up
from devsupport.waiting import wait_until
from services.status.reads import StatusReader
from tests.status.harness import MakeStatus, RunningStatus

pb = status_pb2


async def resync_from_asterisk(status: RunningStatus) -> None:
    """What ami_ingest sends after (re)connecting: the complete truth."""
    await status.ingest(
        batch(
            queue_up("sales"),
            queue_up("support"),
            op_up("sales", "PJSIP/1001", paused=True, paused_reason="lunch", penalty=2),
            op_up("support", "PJSIP/1001", status=pb.MEMBER_STATUS_IN_USE),
            op_up("sales", "PJSIP/1002", membership=pb.MEMBERSHIP_DYNAMIC),
            channel_up("1.1"),
            replace_all=True,
        )
    )
    assert await status.app.service.config_writer.flush(5.0)


async def test_reads_come_from_the_database_while_redis_is_down_and_return_to_redis(
    status: RunningStatus, redis_server: RedisServer
) -> None:
    await resync_from_asterisk(status)
    redis_server.stop()
    try:
        snapshot = await status.stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=5)
        assert snapshot.source == pb.SOURCE_DATABASE
        assert snapshot.stale
        assert [(o.queue_name, o.member_id) for o in snapshot.operators] == [
            ("sales", "PJSIP/1001"),
            ("sales", "PJSIP/1002"),
            ("support", "PJSIP/1001"),
        ]
        assert {o.status for o in snapshot.operators} == {pb.MEMBER_STATUS_UNKNOWN}
        assert snapshot.operators[0].paused_reason == "lunch"
        assert snapshot.operators[1].membership == pb.MEMBERSHIP_DYNAMIC
        assert list(snapshot.channels) == []
        reply = await status.stub.ListOperators(pb.ListOperatorsRequest(queue_name="support"), timeout=5)
        assert reply.meta.source == pb.SOURCE_DATABASE
        assert [o.member_id for o in reply.operators] == ["PJSIP/1001"]
        sync = await status.stub.GetSyncStatus(pb.GetSyncStatusRequest(), timeout=5)
        assert not sync.redis_available
        assert (sync.db_members, sync.db_queues) == (3, 2)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await status.ingest(batch(op_up("sales", "PJSIP/1"), sequence=9))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        redis_server.start()

    async def back_on_redis() -> bool:
        snapshot = await status.stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=5)
        return snapshot.source == pb.SOURCE_REDIS and len(snapshot.operators) == 3

    # Redis came back empty: the follower re-seeds it from the database straight away.
    await wait_until(back_on_redis, within=10, what="reads from a re-seeded Redis")
    status.tokens.clear()  # the lease went with Redis's data: the ingest takes a new one
    await resync_from_asterisk(status)
    snapshot = await status.stub.GetSnapshot(pb.GetSnapshotRequest())
    assert len(snapshot.channels) == 1


async def test_a_replica_started_on_an_empty_redis_seeds_it_from_the_database(
    status: RunningStatus, make_status: MakeStatus, redis_url: str
) -> None:
    await resync_from_asterisk(status)
    await status.stub.Clear(pb.ClearRequest())
    fresh = await make_status()
    snapshot = await fresh.stub.GetSnapshot(pb.GetSnapshotRequest())
    assert snapshot.source == pb.SOURCE_REDIS
    assert len(snapshot.operators) == 3
    assert len(snapshot.queues) == 2
    assert snapshot.stale  # seeded configuration is not live information


class ColdFollower:
    """A follower that has not caught up yet (reloading after an outage): reads go to Redis."""

    connected = True

    def current(self, now: float) -> None:
        return None


async def test_a_redis_restarted_empty_and_not_yet_seeded_is_answered_from_the_database(
    status: RunningStatus, redis_url: str
) -> None:
    await resync_from_asterisk(status)
    service = status.app.service
    reader = StatusReader(service.store, ColdFollower(), service.database, stale_after_seconds=15)  # type: ignore[arg-type]
    async with Redis.from_url(redis_url) as client:
        await client.flushall()
    view = await reader.view()
    assert view.source == pb.SOURCE_DATABASE
    assert view.stale
    assert view.state.counts() == (3, 2, 0)

    await service.seed_if_empty()
    seeded = await reader.view()
    assert seeded.source == pb.SOURCE_REDIS
    assert seeded.state.counts() == (3, 2, 0)


async def test_sync_status_counts_both_sides(status: RunningStatus) -> None:
    await resync_from_asterisk(status)
    await status.ingest(batch(channel_up("2.2"), op_up("sales", "PJSIP/1003"), sequence=5))
    sync = await status.stub.GetSyncStatus(pb.GetSyncStatusRequest())
    assert (sync.db_members, sync.db_queues) == (3, 2)
    assert (sync.redis_operators, sync.redis_queues, sync.redis_channels) == (4, 2, 2)
    assert sync.redis_available
    assert not sync.stale
    assert sync.last_ingest_at > 0


class AcceptingIngest(ingest_pb2_grpc.IngestControlServicer):
    def __init__(self) -> None:
        self.requests = 0

    async def RequestResync(
        self, request: ingest_pb2.RequestResyncRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.RequestResyncResponse:
        self.requests += 1
        return ingest_pb2.RequestResyncResponse(accepted=True)


@pytest.fixture
async def ingest_control() -> AsyncIterator[tuple[str, AcceptingIngest]]:
    server = grpc.aio.server()
    servicer = AcceptingIngest()  # type: ignore[abstract]  # only RequestResync is used
    ingest_pb2_grpc.add_IngestControlServicer_to_server(servicer, server)
    address = f"127.0.0.1:{server.add_insecure_port(ANY_LOOPBACK_PORT)}"
    await server.start()
    yield address, servicer
    await server.stop(0)


async def test_resync_seeds_missing_rows_from_the_database_and_asks_the_ingest(
    make_status: MakeStatus, ingest_control: tuple[str, AcceptingIngest]
) -> None:
    address, fake_ingest = ingest_control
    status = await make_status(ami_ingest_addr=address)
    await resync_from_asterisk(status)
    await status.stub.Clear(pb.ClearRequest())
    await status.ingest(batch(op_up("sales", "PJSIP/1001", status=pb.MEMBER_STATUS_RINGING), sequence=3))
    reply = await status.stub.Resync(pb.ResyncRequest())
    assert (reply.queues_seeded, reply.operators_seeded) == (2, 2)
    assert reply.asterisk_resync_requested
    assert fake_ingest.requests == 1
    snapshot = await status.stub.GetSnapshot(pb.GetSnapshotRequest())
    rows = {(o.queue_name, o.member_id): o for o in snapshot.operators}
    assert len(rows) == 3
    assert rows[("sales", "PJSIP/1001")].status == pb.MEMBER_STATUS_RINGING  # live row kept


async def test_resync_says_when_the_ingest_could_not_be_asked(status: RunningStatus) -> None:
    reply = await status.stub.Resync(pb.ResyncRequest(), timeout=5)
    assert not reply.asterisk_resync_requested
