"""A replica's follower stops when the replica stops, even when its cancel is lost in a Redis call.

On Python 3.11 a redis-py call cancelled while its command is being written can return normally
(runtime.supervision's docstring has the line); the follower then must not go on following."""

from __future__ import annotations

import asyncio

from services.status.domain.state import LiveState
from services.status.follower import Follower
from services.status.redis_store import StreamEntry
from services.status.watch import WatchHub


class StoreLosingCancels:
    """Loads an empty state; every stream read blocks and, when cancelled, returns nothing."""

    def __init__(self) -> None:
        self.reads = 0
        self.reading = asyncio.Event()

    async def load(self) -> LiveState:
        return LiveState()

    async def read_stream(self, after: bytes, *, block_ms: int, count: int = 1000) -> list[StreamEntry]:
        self.reads += 1
        self.reading.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return []
        return []


async def test_a_follower_whose_stream_read_loses_its_cancel_reads_no_more_once_stopped() -> None:
    store = StoreLosingCancels()
    follower = Follower(store, WatchHub(queue_size=16), live_ttl_seconds=60)  # type: ignore[arg-type]
    follower.start()
    task = next(t for t in asyncio.all_tasks() if t.get_name() == "status-follower")
    await asyncio.wait_for(store.reading.wait(), 10)
    await follower.stop()
    assert task.done()
    assert store.reads == 1
    assert not follower.connected
