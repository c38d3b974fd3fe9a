"""The Ingest stream's read-ahead is bounded in bytes: while a group is being applied, batches stop
being read once the buffered ones reach the bound (gRPC flow control then holds the client back),
and reading resumes as they are applied. Groups are applied while earlier acks are still being
written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import cast

from switchboard.status.v1 import status_pb2

from devsupport.waiting import wait_until
from services.status.ingest_stream import acknowledge
from services.status.redis_store import ApplyResult


def _batch(sequence: int, removals: int) -> status_pb2.IngestBatch:
    changes = [status_pb2.StateChange(channel_removed=f"1700000000.{n}") for n in range(removals)]
    return status_pb2.IngestBatch(source_id="ami-1", fencing_token=1, sequence=sequence, changes=changes)


async def _settle() -> None:
    """Let every ready task run (no wall-clock wait: the reader either can go on or is parked)."""
    for _ in range(200):
        await asyncio.sleep(0)


async def test_batches_stop_being_read_once_the_buffered_bytes_reach_the_bound() -> None:
    batch_size = _batch(1, 500).ByteSize()
    taken: list[int] = []
    release = asyncio.Event()
    applied: list[int] = []
    in_apply: list[int] = []

    async def source() -> AsyncIterator[status_pb2.IngestBatch]:
        for sequence in range(1, 101):
            taken.append(sequence)
            yield _batch(sequence, 500)

    async def apply_group(batches: Sequence[status_pb2.IngestBatch]) -> list[ApplyResult]:
        in_apply.extend(batch.sequence for batch in batches)
        await release.wait()
        applied.extend(batch.sequence for batch in batches)
        return [ApplyResult(revision=batch.sequence, changes_applied=1) for batch in batches]

    acks = cast(
        AsyncGenerator[status_pb2.IngestAck, None],
        acknowledge(source(), apply_group, max_read_ahead_bytes=5 * batch_size),
    )
    first_ack = asyncio.ensure_future(anext(acks))
    try:
        # The first group is being applied (held); 5 batches fill the bound, the next read waits for room.
        await wait_until(lambda: in_apply and len(taken) >= len(in_apply) + 6, within=10, what="the read-ahead")
        await _settle()
        assert len(taken) == len(in_apply) + 6
        release.set()
        assert (await first_ack).sequence == 1
        sequences = [1] + [ack.sequence async for ack in acks]
    finally:
        if not first_ack.done():
            first_ack.cancel()
            await asyncio.gather(first_ack, return_exceptions=True)
        await acks.aclose()
    assert sequences == list(range(1, 101))
    assert applied == list(range(1, 101))


async def test_a_batch_larger_than_the_bound_is_still_taken_alone() -> None:
    async def source() -> AsyncIterator[status_pb2.IngestBatch]:
        for sequence in (1, 2, 3):
            yield _batch(sequence, 500)

    async def apply_group(batches: Sequence[status_pb2.IngestBatch]) -> list[ApplyResult]:
        return [ApplyResult(revision=batch.sequence, changes_applied=1) for batch in batches]

    acks = [ack.sequence async for ack in acknowledge(source(), apply_group, max_read_ahead_bytes=1000)]
    assert acks == [1, 2, 3]


async def test_the_next_group_is_applied_while_the_acks_before_it_are_still_being_written() -> None:
    arrived: asyncio.Queue[status_pb2.IngestBatch | None] = asyncio.Queue()
    applied: list[int] = []

    async def source() -> AsyncIterator[status_pb2.IngestBatch]:
        while (batch := await arrived.get()) is not None:
            yield batch

    async def apply_group(batches: Sequence[status_pb2.IngestBatch]) -> list[ApplyResult]:
        applied.extend(batch.sequence for batch in batches)
        return [ApplyResult(revision=batch.sequence, changes_applied=1) for batch in batches]

    acks = cast(AsyncGenerator[status_pb2.IngestAck, None], acknowledge(source(), apply_group))
    try:
        arrived.put_nowait(_batch(1, 1))
        first = await anext(acks)  # not resumed since: grpc.aio writing this ack
        arrived.put_nowait(_batch(2, 1))
        await wait_until(lambda: applied == [1, 2], within=5, what="the second batch applied")
        arrived.put_nowait(None)
        rest = [ack.sequence async for ack in acks]
    finally:
        await acks.aclose()
    assert (first.sequence, rest) == (1, [2])
