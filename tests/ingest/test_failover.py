"""Exactly one ingest leads per Asterisk server; when it dies a standby takes over within 10 s
with a larger fencing token, and a deposed leader's batches are refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import grpc
import grpc.aio
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from switchboard.ingest.v1 import ingest_pb2
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import on_any_port
from devsupport.procs import SpawnService
from devsupport.status_leases import take_lease
from devsupport.waiting import wait_until, wait_until_blocking
from runtime.grpc_server import GrpcServer
from services.ami_ingest.keys import leader_key
from services.ami_ingest.publisher import StatusPublisher
from services.status.app import create_app
from services.status.settings import StatusSettings
from tests.ingest._process_support import STATES, Cluster, Ingest, picture

TAKEOVER_BUDGET_S = 10.0  # the bound on a standby taking over


def wait_lease_renewals(redis_url: str, key: str, held: str, *, count: int) -> None:
    """Return once the lease ``key`` was renewed ``count`` times, holding ``held`` throughout.

    A renewal resets the key's expiry, so its remaining time going up is one renewal seen
    (polled well inside the leader's renewal interval of lease/3).
    """
    client = SyncRedis.from_url(redis_url, decode_responses=True)
    last_ttl, renewals = 0, 0

    def renewed() -> bool:
        nonlocal last_ttl, renewals
        value, ttl = cast(str | None, client.get(key)), cast(int, client.pttl(key))
        assert value is not None, "the lease expired"
        assert value.endswith(held), f"the lease changed hands: {value!r}"
        renewals += ttl > last_ttl
        last_ttl = ttl
        return renewals > count  # the first look counts as one

    try:
        wait_until_blocking(renewed, within=30, what=f"{count} renewals of the lease", interval=0.02)
    finally:
        client.close()


def leader_and_standby(replicas: list[Ingest]) -> tuple[Ingest, Ingest, ingest_pb2.IngestStatus] | None:
    replies = [replica.status() for replica in replicas]
    leaders = [i for i, reply in enumerate(replies) if reply.is_leader]
    if len(leaders) != 1 or replies[leaders[0]].state != STATES.CONNECTION_STATE_LIVE:
        return None
    lead = leaders[0]
    return replicas[lead], replicas[1 - lead], replies[lead]


@pytest.mark.timeout(60)
def test_one_replica_leads_and_a_standby_takes_over_within_10s_of_its_death(
    spawn: SpawnService, redis_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(spawn, redis_url, tmp_path)
    cluster.start_simulator()
    cluster.start_status()
    replicas = [cluster.start_ingest(wait=False), cluster.start_ingest(wait=False)]
    for replica in replicas:
        replica.process.wait_serving(replica.address, timeout=30)

    leader, standby, led = wait_until_blocking(lambda: leader_and_standby(replicas), within=15, what="one live leader")
    lease = leader_key(f"127.0.0.1:{cluster.ami_port}")
    held = f"|{led.fencing_token}"
    wait_lease_renewals(redis_url, lease, held, count=3)  # the standby campaigned meanwhile (every 0.2 s)
    assert leader.status().is_leader
    idle = standby.status()
    assert not idle.is_leader
    assert idle.state == STATES.CONNECTION_STATE_STANDBY
    assert idle.events_total == 0, "a standby holds no AMI session"

    leader.process.kill()  # SIGKILL: no lease handed back, it has to expire
    died = time.monotonic()
    took_over = wait_until_blocking(standby.live_leader, within=TAKEOVER_BUDGET_S + 2, what="the standby leads")
    takeover_s = time.monotonic() - died
    assert takeover_s <= TAKEOVER_BUDGET_S
    assert took_over.fencing_token > led.fencing_token

    # Live events from the new leader keep arriving in the status service, after its resync.
    wait_until_blocking(
        lambda: standby.status().events_total > took_over.events_total + 10,
        within=10,
        what="the new leader applies live events",
    )
    before = cluster.snapshot()
    wait_until_blocking(
        lambda: (s := cluster.snapshot()).revision > before.revision and picture(s) != picture(before),
        within=10,
        what="the snapshot keeps changing after the takeover",
    )


@asynccontextmanager
async def running_status(redis_url: str, data_dir: Path) -> AsyncIterator[status_pb2_grpc.StatusServiceAsyncStub]:
    app = await create_app(StatusSettings(redis_url=redis_url, data_dir=data_dir))
    await app.start()
    server = GrpcServer(on_any_port(app.grpc_service()), authenticator=authenticator_for_tests())
    channel = aio_channel(f"127.0.0.1:{await server.start()}")
    try:
        yield status_pb2_grpc.StatusServiceStub(channel)
    finally:
        await channel.close()
        await server.stop()


def operator(member: str, reason: str) -> status_pb2.StateChange:
    row = status_pb2.Operator(queue_name="sales", member_id=member, member_name=member, paused_reason=reason)
    return status_pb2.StateChange(operator_upserted=row)


async def settled(publisher: StatusPublisher[status_pb2.StateChange]) -> None:
    await wait_until(lambda: publisher.idle and publisher.batches_sent, within=5, what="the publisher sent and is idle")


@pytest.mark.timeout(30)
async def test_a_deposed_leaders_batches_are_refused_and_it_marks_itself_fenced(redis_url: str, tmp_path: Path) -> None:
    async with running_status(redis_url, tmp_path) as stub:
        old = StatusPublisher(
            stub, source_id="pbx1", snapshot=lambda: [operator("PJSIP/1", "old term")], heartbeat_interval=0.2
        )
        new = StatusPublisher(
            stub, source_id="pbx1", snapshot=lambda: [operator("PJSIP/2", "new term")], heartbeat_interval=0.2
        )
        tasks = [asyncio.create_task(old.run()), asyncio.create_task(new.run())]
        redis = Redis.from_url(redis_url)
        try:
            old_token = await take_lease(redis, "pbx1", holder_id="replica-old", lease_ms=60_000)
            old.set_fencing_token(old_token)
            await settled(old)
            await redis.delete(leader_key("pbx1"))  # its lease lapsed while it was paused
            new_token = await take_lease(redis, "pbx1", holder_id="replica-new", lease_ms=60_000)
            assert new_token > old_token
            new.set_fencing_token(new_token)
            await settled(new)

            old.publish([operator("PJSIP/3", "from a leader that lost its lease")])
            await wait_until(lambda: old.fenced, within=5, what="the deposed leader marks itself fenced")
            snapshot = await stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)
            assert [(o.member_id, o.paused_reason) for o in snapshot.operators] == [("PJSIP/2", "new term")]

            # The status service itself says why: FAILED_PRECONDITION for a token not the lease's.
            stale = status_pb2.IngestBatch(
                source_id="pbx1", fencing_token=old_token, sequence=1, changes=[operator("PJSIP/4", "")]
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                async for _ in stub.Ingest(iter([stale]), timeout=5):
                    pass
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

            new.publish([operator("PJSIP/2", "still leading")])
            await settled(new)
            assert not new.fenced
        finally:
            await redis.aclose()
            for publisher in (old, new):
                await publisher.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), 5)
