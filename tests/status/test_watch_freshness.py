"""WatchSnapshot's freshness events: asked for, they follow the changes behind them, report
ingest heartbeats and staleness, and come as heartbeats on a quiet stream."""

from __future__ import annotations

import asyncio

from switchboard.status.v1 import status_pb2

from devsupport.status_batches import batch, op_up
from tests.status.harness import MakeStatus
from tests.status.test_watch import next_message

pb = status_pb2

NO_HEARTBEAT = 60.0
"""A heartbeat interval longer than any of these tests: every event seen is sent on change."""


async def test_a_watch_that_did_not_ask_gets_only_snapshot_and_changes(make_status: MakeStatus) -> None:
    status = await make_status(status_watch_heartbeat_seconds=0.05)
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest())
    assert (await next_message(stream)).WhichOneof("event") == "snapshot"
    await status.ingest(batch(op_up("sales", "PJSIP/1")))
    await asyncio.sleep(0.2)  # four heartbeat intervals: a watch that asked would have had events by now
    await status.ingest(batch(op_up("sales", "PJSIP/2"), sequence=2))
    events = [(await next_message(stream)).WhichOneof("event") for _ in range(2)]
    assert events == ["changes", "changes"]
    stream.cancel()


async def test_freshness_follows_the_change_set_behind_it(make_status: MakeStatus) -> None:
    status = await make_status(status_watch_heartbeat_seconds=NO_HEARTBEAT)
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest(freshness=True))
    snapshot = (await next_message(stream)).snapshot
    [ack] = await status.ingest(batch(op_up("sales", "PJSIP/1")))
    changes = await next_message(stream)
    assert (changes.WhichOneof("event"), changes.changes.revision) == ("changes", ack.revision)
    event = await next_message(stream)
    assert event.WhichOneof("event") == "freshness"
    meta = (await status.stub.ListQueues(pb.ListQueuesRequest())).meta
    assert (event.freshness.source, event.freshness.stale) == (pb.SOURCE_REDIS, False)
    assert event.freshness.last_ingest_at == meta.last_ingest_at > snapshot.last_ingest_at
    assert event.freshness.timestamp > 0
    stream.cancel()


async def test_an_ingest_heartbeat_moves_the_freshness_without_changes(make_status: MakeStatus) -> None:
    status = await make_status(status_watch_heartbeat_seconds=NO_HEARTBEAT)
    await status.ingest(batch(op_up("sales", "PJSIP/1")))
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest(freshness=True))
    snapshot = (await next_message(stream)).snapshot
    await status.ingest(batch(sequence=2))  # no changes: the ingest's idle heartbeat
    event = await next_message(stream)
    assert event.WhichOneof("event") == "freshness"
    assert event.freshness.last_ingest_at > snapshot.last_ingest_at
    assert event.freshness.source == pb.SOURCE_REDIS
    stream.cancel()


async def test_a_quiet_stream_carries_freshness_heartbeats(make_status: MakeStatus) -> None:
    status = await make_status(status_watch_heartbeat_seconds=0.05)
    await status.ingest(batch(op_up("sales", "PJSIP/1")))
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest(freshness=True))
    snapshot = (await next_message(stream)).snapshot
    beats = [await next_message(stream) for _ in range(3)]
    assert [beat.WhichOneof("event") for beat in beats] == ["freshness"] * 3
    assert all(beat.freshness.last_ingest_at == snapshot.last_ingest_at for beat in beats)
    stamps = [beat.freshness.timestamp for beat in beats]
    assert stamps == sorted(stamps)
    assert stamps[0] >= snapshot.timestamp
    stream.cancel()


async def test_freshness_turns_stale_when_the_ingest_goes_quiet(make_status: MakeStatus) -> None:
    status = await make_status(status_watch_heartbeat_seconds=0.05, status_stale_after_seconds=0.3)
    await status.ingest(batch(op_up("sales", "PJSIP/1")))
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest(freshness=True))
    assert (await next_message(stream)).snapshot.stale is False
    async with asyncio.timeout(10):
        while not (event := await next_message(stream)).freshness.stale:
            assert event.WhichOneof("event") == "freshness"
    assert event.freshness.source == pb.SOURCE_REDIS
    stream.cancel()
