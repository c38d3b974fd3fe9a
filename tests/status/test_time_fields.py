"""The status contract's ``*_ms`` fields (docs/api-conventions.md): filled beside the deprecated
seconds fields they replace, from ami_ingest's rows through the status service's answers."""

from __future__ import annotations

import asyncio
import time

from switchboard.status.v1 import status_pb2 as pb

from devsupport.status_batches import batch, channel_up, op_up, queue_up
from runtime.status_model.rules import epoch_ms
from services.ami_ingest.convert import channel_pb, operator_pb, queue_pb
from services.ami_ingest.domain.model import Caller, Channel, Operator, Queue
from tests.status.harness import RunningStatus


def test_epoch_ms_keeps_never_as_zero_and_rounds_to_whole_ms() -> None:
    assert (epoch_ms(0), epoch_ms(1_700_000_000), epoch_ms(9.5), epoch_ms(0.0004)) == (0, 1_700_000_000_000, 9500, 0)


def test_ingest_rows_carry_both_the_seconds_and_the_ms_fields() -> None:
    op = operator_pb(Operator(queue_name="q", member_id="PJSIP/1", last_call=1_700_000_100, login_time=1_700_000_000))
    assert (op.last_call_ms, op.login_time_ms, op.last_pause_ms) == (1_700_000_100_000, 1_700_000_000_000, 0)
    caller = queue_pb(Queue(name="q", callers=(Caller(channel="c", waiting_since=1_700_000_000.25),))).callers[0]
    assert caller.waiting_since_ms == 1_700_000_000_250
    assert (
        channel_pb(Channel(channel_name="PJSIP/1-0001", unique_id="1.1", started_at=1_700_000_001.5)).started_at_ms
        == 1_700_000_001_500
    )


async def test_answers_fill_every_ms_field_beside_its_seconds_field(status: RunningStatus) -> None:
    joined = time.time() - 30
    caller = pb.Caller(channel="Local/2;2", position=1, waiting_since=joined, waiting_since_ms=epoch_ms(joined))
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest())
    first = await asyncio.wait_for(stream.read(), 5)
    assert isinstance(first, pb.WatchSnapshotResponse)
    await status.ingest(batch(op_up("sales", "PJSIP/1"), queue_up("sales", callers=[caller]), channel_up("1.1")))
    message = await asyncio.wait_for(stream.read(), 5)
    assert isinstance(message, pb.WatchSnapshotResponse)
    changes = message.changes
    stream.cancel()
    assert changes.emitted_at_ms == epoch_ms(changes.emitted_at) > 0
    snapshot = await status.stub.GetSnapshot(pb.GetSnapshotRequest())
    assert snapshot.timestamp_ms == epoch_ms(snapshot.timestamp) > first.snapshot.timestamp_ms
    assert snapshot.last_ingest_at_ms == epoch_ms(snapshot.last_ingest_at) > 0
    (queue,) = snapshot.queues
    assert queue.longest_wait_ms == epoch_ms(queue.longest_wait) >= 29_000
    meta = (await status.stub.ListOperators(pb.ListOperatorsRequest())).meta
    assert (meta.timestamp_ms, meta.last_ingest_at_ms) == (epoch_ms(meta.timestamp), epoch_ms(meta.last_ingest_at))
    sync = await status.stub.GetSyncStatus(pb.GetSyncStatusRequest())
    assert sync.last_ingest_at_ms == epoch_ms(sync.last_ingest_at) > 0


async def test_the_changeset_is_stamped_from_the_batchs_ms_field_or_an_older_ingests_seconds(
    status: RunningStatus,
) -> None:
    stream = status.stub.WatchSnapshot(pb.WatchSnapshotRequest())
    assert isinstance(await asyncio.wait_for(stream.read(), 5), pb.WatchSnapshotResponse)
    new_ingest = batch(op_up("sales", "PJSIP/1"), sequence=1)
    new_ingest.ClearField("emitted_at")
    new_ingest.emitted_at_ms = 1_796_211_194_750
    old_ingest = batch(op_up("sales", "PJSIP/2"), sequence=2)
    old_ingest.emitted_at = 1_796_211_195.25
    await status.ingest(new_ingest, old_ingest)
    stamped = []
    for _ in range(2):
        message = await asyncio.wait_for(stream.read(), 5)
        assert isinstance(message, pb.WatchSnapshotResponse)
        stamped.append((message.changes.emitted_at_ms, message.changes.emitted_at))
    stream.cancel()
    assert stamped == [(1_796_211_194_750, 1_796_211_194.75), (1_796_211_195_250, 1_796_211_195.25)]
