"""WatchSnapshot: a snapshot, then every change in order, across replicas; slow watchers skip ahead."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import aio_channel
from devsupport.status_batches import batch, channel_up, op_up, queue_up
from runtime.grpc_errors import details_from_rpc_error
from services.status.app import create_app
from services.status.watch import SKIP_AHEAD, WatchHub
from tests.status.harness import MakeStatus, RunningStatus, settings_for
from tests.support.stopping_server import served_with_a_long_grace, stop_ends_the_stream

pb = status_pb2


async def next_message(stream: object) -> pb.WatchSnapshotResponse:
    async with asyncio.timeout(5):
        return await stream.read()  # type: ignore[attr-defined]


async def test_watch_sends_a_snapshot_then_changes_in_revision_order(status: RunningStatus) -> None:
    await status.ingest(batch(op_up("sales", "PJSIP/1")))
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest())
    first = await next_message(stream)
    assert first.WhichOneof("event") == "snapshot"
    assert [o.member_id for o in first.snapshot.operators] == ["PJSIP/1"]
    await status.ingest(*(batch(op_up("sales", f"PJSIP/{i}", penalty=i), sequence=i) for i in range(2, 12)))
    revisions = []
    for _ in range(10):
        message = await next_message(stream)
        assert message.WhichOneof("event") == "changes"
        revisions.append(message.changes.revision)
    assert revisions == list(range(first.snapshot.revision + 1, first.snapshot.revision + 11))
    stream.cancel()


async def test_a_batch_ingested_on_one_replica_reaches_watchers_of_another(make_status: MakeStatus) -> None:
    writer = await make_status()
    reader = await make_status()
    stream = reader.stub.WatchSnapshot(pb.WatchSnapshotRequest())
    assert (await next_message(stream)).WhichOneof("event") == "snapshot"
    await writer.ingest(batch(op_up("sales", "PJSIP/7", paused=True), channel_up("1.7")))
    message = await next_message(stream)
    changes = message.changes.changes
    assert [c.WhichOneof("change") for c in changes] == ["operator_upserted", "channel_upserted"]
    assert changes[0].operator_upserted.paused
    assert message.changes.emitted_at > 0
    stream.cancel()


async def test_queue_filter_limits_operators_and_queues_but_not_channels(status: RunningStatus) -> None:
    await status.ingest(batch(op_up("sales", "PJSIP/1"), op_up("support", "PJSIP/2"), queue_up("support")))
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest(queue_names=["sales"]))
    snapshot = (await next_message(stream)).snapshot
    assert [o.queue_name for o in snapshot.operators] == ["sales"]
    assert list(snapshot.queues) == []
    await status.ingest(batch(op_up("support", "PJSIP/3"), sequence=2))  # nothing for this watcher
    await status.ingest(batch(op_up("sales", "PJSIP/4"), channel_up("9.9"), sequence=3))
    message = await next_message(stream)
    assert [c.WhichOneof("change") for c in message.changes.changes] == ["operator_upserted", "channel_upserted"]
    assert message.changes.revision == snapshot.revision + 2
    stream.cancel()


async def test_a_watch_of_an_unknown_queue_is_not_found_at_once(status: RunningStatus) -> None:
    await status.ingest(batch(op_up("sales", "PJSIP/1"), queue_up("support")))
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest(queue_names=["sales", "support", "nope"]), timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await next_message(stream)  # within 5 s: long before the call's deadline
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_from_rpc_error(caught.value)["queue"] == "nope"


async def test_a_slow_watcher_skips_ahead_while_a_fast_one_gets_every_change(make_status: MakeStatus) -> None:
    status = await make_status(status_watch_queue_size=16)
    # Without BDP probing the slow client's HTTP/2 window stays at 64 KiB, so an unread stream
    # pushes back on the server within a few change sets, as a stalled consumer on a real network does.
    slow_channel = aio_channel(status.address, options=[("grpc.http2.bdp_probe", 0)])
    slow = status_pb2_grpc.StatusServiceStub(slow_channel).WatchSnapshot(pb.WatchSnapshotRequest())
    fast = status.stub.WatchSnapshot(pb.WatchSnapshotRequest())
    slow_first = await next_message(slow)
    fast_first = await next_message(fast)
    big = "x" * 1000  # large change sets fill the slow client's HTTP/2 window quickly
    count = 200
    received: list[int] = []

    async def read_fast() -> None:
        while len(received) < count:
            received.append((await next_message(fast)).changes.revision)

    reader = asyncio.create_task(read_fast())
    for i in range(count):  # one at a time, as a live feed arrives (not one burst)
        await status.ingest(batch(*(op_up("q", f"PJSIP/{i}-{j}", paused_reason=big) for j in range(16))))
    await reader
    start = fast_first.snapshot.revision
    assert received == list(range(start + 1, start + count + 1))
    # The slow one catches up: after a skip it gets a fresh snapshot, never a gap.
    last = slow_first.snapshot.revision
    skipped = False
    while last < start + count:
        message = await next_message(slow)
        if message.WhichOneof("event") == "snapshot":
            skipped = True
            last = message.snapshot.revision
        else:
            assert message.changes.revision == last + 1
            last = message.changes.revision
    assert skipped
    slow.cancel()
    fast.cancel()
    await slow_channel.close()


async def test_hub_publish_never_blocks_on_a_full_watcher() -> None:
    hub = WatchHub(queue_size=2)
    stuck = hub.subscribe()
    live = hub.subscribe()
    for revision in range(1, 6):
        changes = pb.ChangeSet(revision=revision)
        hub.publish(changes, changes.SerializeToString())
        await live.queue.get()
    # 1, 2 fill it; 3 overflows (skip marker); 4 queues; 5 overflows again.
    items = [stuck.queue.get_nowait() for _ in range(stuck.queue.qsize())]
    assert [revision for revision, _ in items] == [SKIP_AHEAD]
    assert stuck.skips == 2


async def test_clear_empties_the_state_and_watchers_see_a_replace_all(status: RunningStatus) -> None:
    await status.ingest(batch(op_up("sales", "PJSIP/1"), queue_up("sales"), channel_up("1.1")))
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest())
    await next_message(stream)
    reply = await status.stub.Clear(pb.ClearRequest())
    assert reply.removed_keys == 6
    message = await next_message(stream)
    assert message.changes.replace_all
    assert list(message.changes.changes) == []
    snapshot = await status.stub.GetSnapshot(pb.GetSnapshotRequest())
    assert (len(snapshot.operators), len(snapshot.queues), len(snapshot.channels)) == (0, 0, 0)
    stream.cancel()


async def test_a_stopping_server_ends_its_watch_streams_before_it_drains(redis_url: str, sqlite_url: str) -> None:
    app = await create_app(settings_for(redis_url, sqlite_url))
    await app.start()
    async with served_with_a_long_grace(app.grpc_service()) as (server, channel):
        stream = status_pb2_grpc.StatusServiceStub(channel).WatchSnapshot(pb.WatchSnapshotRequest())
        assert (await next_message(stream)).WhichOneof("event") == "snapshot"
        await stop_ends_the_stream(server, stream)
