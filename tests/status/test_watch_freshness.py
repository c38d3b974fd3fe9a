"""WatchSnapshot's freshness events: asked for, they follow the changes behind them, report
ingest heartbeats and staleness, and come as heartbeats on a quiet (or busy) stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from switchboard.status.v1 import status_pb2

from devsupport.status_batches import batch, op_up
from services.status.watch import WatchHub
from services.status.watch_stream import watch_stream
from tests.status.harness import MakeStatus
from tests.status.test_watch import next_message

pb = status_pb2

NO_HEARTBEAT = 60.0
"""A heartbeat interval longer than any of these tests: every event seen is sent on change."""


async def test_a_watch_that_did_not_ask_gets_only_snapshot_and_changes(make_status: MakeStatus) -> None:
    status = await make_status(status_watch_heartbeat_seconds=0.05)
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest())
    asked = status.stub.WatchSnapshot(pb.WatchSnapshotRequest(freshness=True))
    assert (await next_message(stream)).WhichOneof("event") == "snapshot"
    assert (await next_message(asked)).WhichOneof("event") == "snapshot"
    await status.ingest(batch(op_up("sales", "PJSIP/1")))
    # The watch that asked hears the change and then heartbeats: by its third freshness event the
    # same ones would have been sent to the first watch too, had it been given any.
    freshness = 0
    while freshness < 3:
        freshness += (await next_message(asked)).WhichOneof("event") == "freshness"
    asked.cancel()
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


class _Feed:
    """What a stream reads besides its mailbox: the snapshot and the current freshness."""

    def __init__(self) -> None:
        self.last_ingest_at = 1.0

    async def snapshot(self, names: object) -> tuple[int, bytes, tuple[int, bool, float]]:
        event = pb.WatchSnapshotResponse(snapshot=pb.Snapshot(revision=0, last_ingest_at=1.0, source=pb.SOURCE_REDIS))
        return 0, event.SerializeToString(), (pb.SOURCE_REDIS, False, 1.0)

    async def freshness(self) -> pb.ReadMeta:
        return pb.ReadMeta(source=pb.SOURCE_REDIS, last_ingest_at=self.last_ingest_at)


async def _events(stream: AsyncIterator[bytes], count: int) -> list[str | None]:
    async with asyncio.timeout(5):
        return [pb.WatchSnapshotResponse.FromString(await anext(stream)).WhichOneof("event") for _ in range(count)]


def _publish(hub: WatchHub, revision: int) -> None:
    changes = pb.ChangeSet(revision=revision)
    hub.publish(changes, changes.SerializeToString())


async def test_freshness_waits_until_the_stream_has_caught_up_with_the_changes_behind_it() -> None:
    hub, feed = WatchHub(16), _Feed()
    stream = watch_stream(hub, feed.snapshot, feed.freshness, freshness=True, heartbeat_seconds=NO_HEARTBEAT)
    assert await _events(stream, 1) == ["snapshot"]
    feed.last_ingest_at = 2.0
    for revision in (1, 2, 3):
        _publish(hub, revision)
    assert await _events(stream, 4) == ["changes", "changes", "changes", "freshness"]


async def test_a_busy_stream_still_carries_freshness_every_heartbeat() -> None:
    hub, feed = WatchHub(16), _Feed()
    stream = watch_stream(hub, feed.snapshot, feed.freshness, freshness=True, heartbeat_seconds=0.0)
    assert await _events(stream, 1) == ["snapshot"]
    for revision in (1, 2):
        _publish(hub, revision)
    assert await _events(stream, 4) == ["changes", "freshness", "changes", "freshness"]
