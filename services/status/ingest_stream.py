"""One Ingest stream: batches read ahead, applied in groups, acknowledged in order.

While a group is being applied, the batches that arrive are read ahead; the next group is
whatever has arrived by then (at most :data:`MAX_GROUP`), applied together: each batch still
atomic, all in one Redis round trip, so a burst never queues behind per-batch round trips.
Sequences must increase within a stream. A bad or fenced-off batch ends the stream (with its
error) after the acks of every batch before it. A fenced-off one is also refused in-band first, by
an ack with ``fenced`` set: grpc.aio's client may read the FAILED_PRECONDITION that follows as
INTERNAL when one of its writes reaches the core after the status (grpc/grpc#36066), and the
publisher would then retry once more before stepping down.

The read-ahead is bounded twice: at most :data:`MAX_READ_AHEAD` batches and at most
``max_read_ahead_bytes`` of them (``STATUS_INGEST_READ_AHEAD_BYTES``, serialized size) — a batch may
be up to the 4 MB gRPC message limit, and 256 of those would be 1 GB per stream. Past the bound the
stream is simply not read: HTTP/2 flow control then holds the client back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final

from switchboard.status.v1 import status_pb2

from runtime.errors import InvalidArgument
from services.status.domain import validation
from services.status.redis_store import ApplyResult, PartiallyApplied

MAX_READ_AHEAD: Final = 256
"""Batches buffered ahead of the one being applied."""
MAX_GROUP: Final = 64
"""Most batches applied in one Redis round trip."""
DEFAULT_READ_AHEAD_BYTES: Final = 16 * 1024 * 1024
"""Serialized bytes of the batches read ahead, at most (one batch is always taken, whatever its size)."""

ApplyGroup = Callable[[Sequence[status_pb2.IngestBatch]], Awaitable[list[ApplyResult]]]
"""Applies validated batches of one stream in order; raises PartiallyApplied when one was refused."""


class _Group:
    """The next batches to apply together, and the problem that ends the stream after them."""

    def __init__(self) -> None:
        self.batches: list[status_pb2.IngestBatch] = []
        self.problem: InvalidArgument | None = None
        self.last = False
        """The client closed its side after these batches."""


class _SequenceCheck:
    def __init__(self) -> None:
        self.last_sequence: int | None = None

    def accept(self, batch: status_pb2.IngestBatch) -> None:
        """Raises InvalidArgument for a malformed batch or a sequence that does not increase."""
        validation.check_batch(batch)
        if self.last_sequence is not None and batch.sequence <= self.last_sequence:
            raise InvalidArgument(
                "sequence", f"must increase within a stream (got {batch.sequence} after {self.last_sequence})"
            )
        self.last_sequence = batch.sequence


class _ReadAhead:
    """The batches read ahead of the group being applied, bounded in count and in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._queue: asyncio.Queue[tuple[status_pb2.IngestBatch | None, int]] = asyncio.Queue(MAX_READ_AHEAD)
        self._max_bytes = max_bytes
        self.buffered_bytes = 0
        self._room = asyncio.Event()
        self._room.set()

    async def put(self, batch: status_pb2.IngestBatch | None) -> None:
        """Waits while the buffered batches are at the byte bound (the end marker never waits)."""
        size = 0
        if batch is not None:
            await self._room.wait()
            size = batch.ByteSize()
            self.buffered_bytes += size
            if self.buffered_bytes >= self._max_bytes:
                self._room.clear()
        await self._queue.put((batch, size))

    def _taken(self, item: tuple[status_pb2.IngestBatch | None, int]) -> status_pb2.IngestBatch | None:
        batch, size = item
        self.buffered_bytes -= size
        if self.buffered_bytes < self._max_bytes:
            self._room.set()
        return batch

    async def get(self) -> status_pb2.IngestBatch | None:
        return self._taken(await self._queue.get())

    def empty(self) -> bool:
        return self._queue.empty()

    def get_nowait(self) -> status_pb2.IngestBatch | None:
        return self._taken(self._queue.get_nowait())


async def _next_group(arrived: _ReadAhead, check: _SequenceCheck) -> _Group:
    """Wait for one batch, then take whatever else has arrived (up to MAX_GROUP)."""
    group = _Group()
    item = await arrived.get()
    while True:
        if item is None:
            group.last = True
            return group
        try:
            check.accept(item)
        except InvalidArgument as error:
            group.problem = error
            return group
        group.batches.append(item)
        if arrived.empty() or len(group.batches) >= MAX_GROUP:
            return group
        item = arrived.get_nowait()


def _acks(batches: Sequence[status_pb2.IngestBatch], results: Sequence[ApplyResult]) -> list[status_pb2.IngestAck]:
    return [
        status_pb2.IngestAck(sequence=batch.sequence, revision=result.revision)
        for batch, result in zip(batches, results, strict=False)
    ]


async def _apply_groups(
    arrived: _ReadAhead, apply_group: ApplyGroup, acks: asyncio.Queue[status_pb2.IngestAck | Exception | None]
) -> None:
    """Apply group after group; put each batch's ack in ``acks``, then the error that ends the
    stream (or ``None`` when the client closed its side)."""
    check = _SequenceCheck()
    try:
        while True:
            group = await _next_group(arrived, check)
            if group.batches:
                try:
                    results = await apply_group(group.batches)
                except PartiallyApplied as partial:
                    for ack in _acks(group.batches, partial.applied):
                        await acks.put(ack)
                    fenced = group.batches[len(partial.applied)].sequence
                    await acks.put(status_pb2.IngestAck(sequence=fenced, fenced=True))
                    await acks.put(partial.error)
                    return
                for ack in _acks(group.batches, results):
                    await acks.put(ack)
            if group.problem is not None:
                await acks.put(group.problem)
                return
            if group.last:
                await acks.put(None)
                return
    except Exception as error:  # Redis unreachable, a bug: the stream ends with it
        await acks.put(error)


async def acknowledge(
    batches: AsyncIterator[status_pb2.IngestBatch],
    apply_group: ApplyGroup,
    *,
    max_read_ahead_bytes: int = DEFAULT_READ_AHEAD_BYTES,
) -> AsyncIterator[status_pb2.IngestAck]:
    """Apply one stream's batches as they arrive; yield each one's ack, in order.

    The groups are applied in a task of their own: grpc.aio finishes writing each ack before the
    generator is resumed (a completion from its poller thread, a few hundred µs on a busy
    machine), and the next group, read ahead meanwhile, need not wait for that. The acks not
    written yet are bounded like the read-ahead, so a client that stops reading its acks still
    stops the stream being read.
    """
    arrived = _ReadAhead(max_read_ahead_bytes)
    acks: asyncio.Queue[status_pb2.IngestAck | Exception | None] = asyncio.Queue(MAX_READ_AHEAD)

    async def read_ahead() -> None:
        try:
            async for batch in batches:
                await arrived.put(batch)
        finally:
            await arrived.put(None)

    reader = asyncio.create_task(read_ahead())
    applier = asyncio.create_task(_apply_groups(arrived, apply_group, acks))
    try:
        while (item := await acks.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        applier.cancel()
        reader.cancel()
