"""Ingest into Redis: atomic batches in one round trip, fencing, replace_all, TTLs and staleness."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from redis.asyncio import Redis
from switchboard.status.v1 import status_pb2

from devsupport.status_batches import batch, center, channel_up, op_rm, op_up, queue_up
from devsupport.status_leases import TEST_HOLDER, take_lease
from devsupport.streams import next_message
from devsupport.waiting import wait_until
from runtime.grpc_errors import details_from_rpc_error
from services.ami_ingest import keys as ingest_keys
from services.status import keys
from tests.status.harness import MakeStatus, RunningStatus


async def test_acks_carry_sequence_and_the_revision_produced(status: RunningStatus) -> None:
    acks = await status.ingest(
        batch(op_up("sales", "PJSIP/1"), sequence=1), batch(op_up("sales", "PJSIP/2"), sequence=2)
    )
    assert [(a.sequence, a.revision) for a in acks] == [(1, 1), (2, 2)]


async def test_a_batch_is_one_evalsha_round_trip(status: RunningStatus, redis_url: str) -> None:
    [big] = await status.leased(batch(*center(200, 20, 100)))
    await status.app.service.store.apply_batch(big)  # the script is loaded: the call below is all there is
    big.sequence = 2
    monitor_client, marker_client = Redis.from_url(redis_url), Redis.from_url(redis_url)
    commands: list[str] = []
    async with monitor_client.monitor() as monitor:

        async def record() -> None:
            async for event in monitor.listen():
                if event.get("client_type") != "lua":
                    commands.append(event["command"])

        async def marked(word: str) -> None:
            # MONITOR shows commands in the order Redis ran them: once it shows the marker, it
            # has shown every command run before it.
            await marker_client.echo(word)
            await wait_until(lambda: f"ECHO {word}" in commands, within=10, what=f"MONITOR shows ECHO {word}")

        recorder = asyncio.create_task(record())
        await marked("before")
        await status.app.service.store.apply_batch(big)
        await marked("after")
        recorder.cancel()
    await monitor_client.aclose()
    await marker_client.aclose()
    during = commands[commands.index("ECHO before") + 1 : commands.index("ECHO after")]
    names = [command.split(" ")[0].upper() for command in during]
    writes = [c for c in names if c not in {"XREAD", "PING", "CLIENT", "INFO", "CONFIG"}]  # reads, connection setup
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
    token = await take_lease(store.client, "pbx1")
    for round_number in range(5):
        rows = [op_up("big", f"PJSIP/{round_number}-{i}") for i in range(400)]
        rows += [channel_up(f"{round_number}.{i}") for i in range(100)]
        await store.apply(rows, source_id="pbx1", fencing_token=token, replace_all=True)
    done.set()
    await task
    await reader.aclose()
    assert seen <= {(0, 0), (400, 100)}


async def test_a_batch_under_the_lease_holders_token_is_applied_at_a_realistic_magnitude(
    status: RunningStatus,
) -> None:
    token = await take_lease(status.app.redis, "pbx1")
    assert token > 2**50  # clock-based, as ami_ingest's leader gets it
    [ack] = await status.ingest(batch(op_up("sales", "PJSIP/1"), token=token))
    assert ack.revision >= 1
    recorded = await status.app.redis.hget(keys.META, keys.fence_field("pbx1"))  # type: ignore[misc]
    assert recorded == str(token).encode()


async def test_a_forged_token_above_the_lease_holders_is_refused_and_the_real_ingest_keeps_writing(
    status: RunningStatus,
) -> None:
    token = await take_lease(status.app.redis, "pbx1")
    for forged in (2**63, 2**64 - 1, token + 1):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await status.ingest(batch(op_up("sales", "PJSIP/666"), token=forged))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = details_from_rpc_error(error.value)
        assert int(details["fencingToken"]) == forged  # exact: no float on the way
        assert int(details["leaseToken"]) == token
    await status.ingest(batch(op_up("sales", "PJSIP/1"), token=token))
    reply = await status.stub.ListOperators(status_pb2.ListOperatorsRequest())
    assert [o.member_id for o in reply.operators] == ["PJSIP/1"]


async def test_a_former_leaders_token_is_refused_once_another_replica_took_the_lease(status: RunningStatus) -> None:
    redis = status.app.redis
    old = await take_lease(redis, "pbx1", holder_id="replica-a", lease_ms=60_000)
    await status.ingest(batch(op_up("sales", "PJSIP/1"), token=old))
    await redis.delete(ingest_keys.leader_key("pbx1"))  # the lease lapsed while replica-a was paused
    new = await take_lease(redis, "pbx1", holder_id="replica-b")
    assert new > old
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await status.ingest(batch(op_up("sales", "PJSIP/666"), token=old))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert int(details_from_rpc_error(error.value)["leaseToken"]) == new
    await status.ingest(batch(op_up("sales", "PJSIP/2"), token=new, sequence=2))
    reply = await status.stub.ListOperators(status_pb2.ListOperatorsRequest())
    assert [o.member_id for o in reply.operators] == ["PJSIP/1", "PJSIP/2"]


async def test_a_fenced_off_batch_is_refused_in_band_before_the_stream_ends(status: RunningStatus) -> None:
    # grpc.aio's client may read the FAILED_PRECONDITION as INTERNAL when one of its writes races
    # it (grpc/grpc#36066): the ack marked fenced says it first, in the stream itself.
    redis = status.app.redis
    old = await take_lease(redis, "pbx1", holder_id="replica-a", lease_ms=60_000)
    await status.ingest(batch(op_up("sales", "PJSIP/1"), token=old))
    await redis.delete(ingest_keys.leader_key("pbx1"))
    await take_lease(redis, "pbx1", holder_id="replica-b")
    call = status.stub.Ingest(iter([batch(op_up("sales", "PJSIP/666"), token=old, sequence=7)]), timeout=10)
    assert await call.read() == status_pb2.IngestAck(sequence=7, fenced=True)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call.read()
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_without_a_lease_no_token_is_accepted(status: RunningStatus) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await status.ingest(batch(op_up("sales", "PJSIP/666"), token=1_796_211_194_707_800, source="pbx-nobody"))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "nobody holds the lease" in (error.value.details() or "")


async def test_a_batch_without_a_token_is_invalid(status: RunningStatus) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await status.stub.Ingest(iter([batch(op_up("sales", "PJSIP/1"))]), timeout=10).read()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error.value)["field"] == "fencing_token"


async def test_each_source_has_its_own_lease(status: RunningStatus) -> None:
    await status.ingest(batch(op_up("sales", "PJSIP/1")), batch(op_up("x", "PJSIP/3"), source="pbx2", sequence=2))
    reply = await status.stub.ListOperators(status_pb2.ListOperatorsRequest())
    assert sorted(o.member_id for o in reply.operators) == ["PJSIP/1", "PJSIP/3"]


async def test_a_replace_all_keeps_the_rows_of_other_sources(status: RunningStatus) -> None:
    await status.ingest(
        batch(queue_up("sales"), op_up("sales", "PJSIP/1"), channel_up("1.1")),
        batch(queue_up("support"), op_up("support", "PJSIP/7"), channel_up("2.1"), source="pbx2", sequence=2),
    )
    await status.ingest(batch(queue_up("fake"), source="pbx2", replace_all=True))
    snapshot = await status.stub.GetSnapshot(status_pb2.GetSnapshotRequest())
    assert sorted(q.name for q in snapshot.queues) == ["fake", "sales"]
    assert [o.member_id for o in snapshot.operators] == ["PJSIP/1"]
    assert [c.unique_id for c in snapshot.channels] == ["1.1"]
    # A watcher (and every replica's mirror) restarting from that replace_all keeps pbx1's rows.
    watch = status.stub.WatchSnapshot(status_pb2.WatchSnapshotRequest())
    first = await next_message(watch)
    assert sorted(q.name for q in first.snapshot.queues) == ["fake", "sales"]
    watch.cancel()


async def test_a_replace_all_announces_the_kept_rows_in_its_change_set(status: RunningStatus) -> None:
    await status.ingest(batch(queue_up("sales"), op_up("sales", "PJSIP/1")))
    [result] = await status.app.service.store.apply_batches(
        await status.leased(batch(queue_up("support"), source="pbx2", replace_all=True))
    )
    changes = status_pb2.ChangeSet.FromString(result.changeset)
    assert changes.replace_all
    kinds = [str(c.WhichOneof("change")) for c in changes.changes]
    assert sorted(kinds) == ["operator_upserted", "queue_upserted", "queue_upserted"]
    assert {c.queue_upserted.name for c in changes.changes if c.HasField("queue_upserted")} == {"sales", "support"}


async def test_a_refusal_names_the_highest_token_seen_to_the_last_digit(status: RunningStatus) -> None:
    redis = status.app.redis
    leader = await take_lease(redis, "pbx1")
    await status.ingest(batch(op_up("sales", "PJSIP/1"), token=leader))
    # A lease key that went back in time (restored from an old backup): the highest token wins.
    await redis.set(ingest_keys.leader_key("pbx1"), f"{TEST_HOLDER}|{leader - 1}")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await status.ingest(batch(op_up("sales", "PJSIP/666"), token=leader - 1))
    details = details_from_rpc_error(error.value)
    assert (details["fencingToken"], details["highest"]) == (str(leader - 1), str(leader))


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


STALE_AFTER = 1.0
"""Long enough for a read right after an ingest to be fresh on a loaded machine."""


async def stale_operators(status: RunningStatus) -> status_pb2.ListOperatorsResponse | None:
    reply = await status.stub.ListOperators(status_pb2.ListOperatorsRequest())
    return reply if reply.meta.stale else None


async def fresh_snapshot(status: RunningStatus) -> status_pb2.Snapshot | None:
    snapshot = await status.stub.GetSnapshot(status_pb2.GetSnapshotRequest())
    return None if snapshot.stale else snapshot


async def test_reads_turn_stale_when_the_ingest_goes_quiet_and_fresh_on_a_heartbeat(make_status: MakeStatus) -> None:
    status = await make_status(status_stale_after_seconds=STALE_AFTER)
    [ack] = await status.ingest(batch(op_up("sales", "PJSIP/1")))
    fresh = await status.stub.GetSnapshot(status_pb2.GetSnapshotRequest())
    assert (fresh.revision, fresh.stale) == (ack.revision, False)
    stale = await wait_until(
        lambda: stale_operators(status), within=STALE_AFTER + 10, what="the reads turn stale, the ingest quiet"
    )
    assert time.time() - fresh.last_ingest_at >= STALE_AFTER
    assert stale.meta.last_ingest_at == pytest.approx(fresh.last_ingest_at)
    await status.ingest(batch(sequence=2))
    again = await wait_until(lambda: fresh_snapshot(status), within=10, what="a heartbeat makes the reads fresh")
    assert again.last_ingest_at > fresh.last_ingest_at
    assert again.revision == fresh.revision  # a heartbeat changes nothing but freshness
