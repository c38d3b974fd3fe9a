"""The ingesting replica delivers its own writes to its watchers; the stream stays the order."""

from __future__ import annotations

import dataclasses

from switchboard.status.v1 import status_pb2

from devsupport.status_batches import batch, op_up
from services.status.follower import Follower
from services.status.watch import WatchHub
from tests.status.harness import RunningStatus

pb = status_pb2


async def standalone_follower(status: RunningStatus) -> tuple[Follower, WatchHub]:
    """A follower on the same Redis that is not reading the stream: only delivery moves it."""
    hub = WatchHub(queue_size=16)
    follower = Follower(status.app.service.store, hub, live_ttl_seconds=60)
    follower.state = await status.app.service.store.load()
    follower.connected = True
    return follower, hub


async def test_a_written_change_set_reaches_local_watchers_without_reading_the_stream(status: RunningStatus) -> None:
    follower, hub = await standalone_follower(status)
    watcher = hub.subscribe()
    assert follower.state is not None
    before = follower.state.revision
    [result] = await status.app.service.store.apply_batches(await status.leased(batch(op_up("sales", "PJSIP/1"))))
    assert follower.deliver(result)
    revision, payload = watcher.queue.get_nowait()
    assert revision == result.revision == before + 1 == follower.state.revision
    message = pb.WatchSnapshotResponse.FromString(payload)
    assert [c.operator_upserted.member_id for c in message.changes.changes] == ["PJSIP/1"]
    assert [op.member_id for op in follower.state.operators()] == ["PJSIP/1"]
    assert not follower.deliver(result)  # the same revision again (as the stream would bring it)
    assert watcher.queue.empty()


async def test_a_change_set_that_does_not_follow_the_state_is_left_to_the_stream(status: RunningStatus) -> None:
    follower, hub = await standalone_follower(status)
    watcher = hub.subscribe()
    store = status.app.service.store
    [first] = await store.apply_batches(await status.leased(batch(op_up("sales", "PJSIP/1"))))
    [second] = await store.apply_batches(await status.leased(batch(op_up("sales", "PJSIP/2"), sequence=2)))
    assert not follower.deliver(second)  # revision + 2: another writer's change comes first
    assert not follower.deliver(dataclasses.replace(first, changeset=b""))  # nothing was written
    assert watcher.queue.empty()
    follower.connected = False
    assert not follower.deliver(first)  # a cold follower reloads from Redis instead


async def test_a_batch_group_runs_once_each_in_order_after_redis_lost_its_scripts(status: RunningStatus) -> None:
    service = status.app.service
    await status.app.redis.script_flush()
    batches = await status.leased(*(batch(op_up("sales", f"PJSIP/{i}", penalty=i), sequence=i) for i in range(1, 4)))
    results = await service.store.apply_batches(batches)
    assert [r.revision for r in results] == [results[0].revision + i for i in range(3)]
    operators, _queues, _channels = await service.store.counts()
    assert operators == 3
    await status.app.redis.script_flush()
    [single] = await service.store.apply_batches(await status.leased(batch(op_up("sales", "PJSIP/9"), sequence=9)))
    assert single.revision == results[-1].revision + 1
