"""StatusPublisher: ordered, coalesced, self-healing delivery into StatusService.Ingest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import grpc.aio
import pytest
import structlog
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import aio_channel
from devsupport.ports import free_port
from devsupport.waiting import wait_until
from runtime.retry import RetryPolicy
from services.ami_ingest.publisher import StatusPublisher


def channel_change(uid: str) -> status_pb2.StateChange:
    return status_pb2.StateChange(channel_upserted=status_pb2.Channel(unique_id=uid, channel_name=f"Local/{uid}"))


class RecordingStatus(status_pb2_grpc.StatusServiceServicer):
    """A status service that records batches; refuses tokens below ``min_token``."""

    def __init__(self) -> None:
        self.batches: asyncio.Queue[status_pb2.IngestBatch] = asyncio.Queue()
        self.min_token = 0
        self.streams = 0
        self.acking = asyncio.Event()
        """Cleared: batches are still received (and recorded) but not acknowledged."""
        self.acking.set()
        self.refusal_read_as_internal = False
        """Refuse in-band, then end as grpc.aio's client reads it when a write races the status
        (grpc/grpc#36066): INTERNAL instead of FAILED_PRECONDITION."""

    async def Ingest(
        self, request_iterator: AsyncIterator[status_pb2.IngestBatch], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[status_pb2.IngestAck]:
        self.streams += 1
        async for batch in request_iterator:
            if batch.fencing_token < self.min_token and self.refusal_read_as_internal:
                yield status_pb2.IngestAck(sequence=batch.sequence, fenced=True)
                await context.abort(grpc.StatusCode.INTERNAL, "Received RST_STREAM with error code 2")
            if batch.fencing_token < self.min_token:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "stale fencing token")
            await self.batches.put(batch)
            await self.acking.wait()
            yield status_pb2.IngestAck(sequence=batch.sequence, revision=batch.sequence)


class Harness:
    def __init__(self, port: int = 0) -> None:
        self.port = port  # 0: the first start binds a port the OS picks; a restart binds it again
        self.status = RecordingStatus()  # type: ignore[abstract]  # only Ingest is served
        self.server: grpc.aio.Server | None = None
        self.state: list[status_pb2.StateChange] | None = None

    async def start_server(self) -> None:
        self.server = grpc.aio.server()
        status_pb2_grpc.add_StatusServiceServicer_to_server(self.status, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()

    async def stop_server(self) -> None:
        assert self.server is not None
        await self.server.stop(0)

    def snapshot(self) -> Sequence[status_pb2.StateChange] | None:
        return self.state

    async def next_batch(self) -> status_pb2.IngestBatch:
        return await asyncio.wait_for(self.status.batches.get(), 5)


async def serving_publisher(**options: Any) -> AsyncIterator[tuple[Harness, StatusPublisher]]:
    """A started Harness and a running publisher of source pbx1 into it (``options`` its own)."""
    h = Harness()
    await h.start_server()
    channel = aio_channel(f"127.0.0.1:{h.port}")
    publisher = StatusPublisher(
        status_pb2_grpc.StatusServiceStub(channel), source_id="pbx1", snapshot=h.snapshot, **options
    )
    task = asyncio.create_task(publisher.run())
    yield h, publisher
    await publisher.stop()
    await asyncio.wait_for(task, 5)
    await channel.close()
    await h.stop_server()


@pytest.fixture
async def harness() -> AsyncIterator[tuple[Harness, StatusPublisher]]:
    async for running in serving_publisher(heartbeat_interval=0.2):
        yield running


@pytest.fixture
async def window_of_one() -> AsyncIterator[tuple[Harness, StatusPublisher]]:
    """At most one batch unacknowledged; no heartbeat in a test's time; quick retries."""
    retry = RetryPolicy(attempts=0, base=0.02, cap=0.05, jitter=0.0)
    async for running in serving_publisher(max_in_flight=1, heartbeat_interval=30, retry=retry):
        yield running


async def test_nothing_is_sent_before_the_ingest_leads(harness: tuple[Harness, StatusPublisher]) -> None:
    h, publisher = harness
    publisher.publish([channel_change("1")])
    # Negative check: a leading publisher sends within its 0.2 s heartbeat interval, so 0.3 s
    # without a batch shows it holds everything back while it has no fencing token.
    await asyncio.sleep(0.3)
    assert h.status.batches.empty()


async def test_changes_arrive_in_order_with_increasing_sequence(harness: tuple[Harness, StatusPublisher]) -> None:
    h, publisher = harness
    h.state = []
    publisher.set_fencing_token(7)
    first = await h.next_batch()
    assert first.replace_all
    assert first.fencing_token == 7
    for uid in ("a", "b", "c"):
        publisher.publish([channel_change(uid)])
    seen: list[str] = []
    sequences = [first.sequence]
    while len(seen) < 3:
        batch = await h.next_batch()
        sequences.append(batch.sequence)
        seen.extend(c.channel_upserted.unique_id for c in batch.changes)
    assert seen == ["a", "b", "c"]
    assert sequences == sorted(set(sequences))


async def test_a_batch_carries_when_its_changes_were_emitted_in_ms_and_in_deprecated_seconds(
    harness: tuple[Harness, StatusPublisher],
) -> None:
    h, publisher = harness
    h.state = []
    publisher.set_fencing_token(1)
    await h.next_batch()
    publisher.publish([channel_change("a")], emitted_at=1_796_211_194.75)
    batch = await h.next_batch()
    while not batch.changes:  # a heartbeat may come first
        batch = await h.next_batch()
    assert (batch.emitted_at_ms, batch.emitted_at) == (1_796_211_194_750, 1_796_211_194.75)


async def test_queued_changes_are_coalesced_into_one_batch(harness: tuple[Harness, StatusPublisher]) -> None:
    h, publisher = harness
    h.state = []
    publisher.set_fencing_token(1)
    await h.next_batch()
    publisher.publish([channel_change("a")])  # superseded by the replace_all below
    publisher.publish_replace_all([channel_change("x")])
    publisher.publish([channel_change("y")])
    publisher.publish([channel_change("z")])
    batch = await h.next_batch()
    assert batch.replace_all
    assert [c.channel_upserted.unique_id for c in batch.changes] == ["x", "y", "z"]


async def test_changes_wait_while_the_window_of_unacknowledged_batches_is_full_then_leave_together(
    window_of_one: tuple[Harness, StatusPublisher],
) -> None:
    h, publisher = window_of_one
    h.state = []
    h.status.acking.clear()  # the status service falls behind: the first batch fills the window
    publisher.set_fencing_token(1)
    assert (await h.next_batch()).replace_all
    publisher.publish([channel_change("a")])
    # Negative check: with room in the window "a" would leave at once (the first batch did),
    # alone in its batch, before "b" is queued.
    await asyncio.sleep(0.3)
    publisher.publish([channel_change("b")])
    assert h.status.batches.empty()
    h.status.acking.set()
    assert [c.channel_upserted.unique_id for c in (await h.next_batch()).changes] == ["a", "b"]


async def test_batches_left_unacknowledged_by_a_broken_stream_do_not_hold_back_the_next_one(
    window_of_one: tuple[Harness, StatusPublisher],
) -> None:
    h, publisher = window_of_one
    h.state = [channel_change("a")]
    h.status.acking.clear()  # the window fills and the stream breaks before any ack
    publisher.set_fencing_token(1)
    assert (await h.next_batch()).replace_all
    await h.stop_server()
    h.state = [channel_change("a"), channel_change("b")]
    await h.start_server()
    resumed = await h.next_batch()
    assert resumed.replace_all
    assert [c.channel_upserted.unique_id for c in resumed.changes] == ["a", "b"]


async def test_a_new_leader_starts_from_its_full_state(harness: tuple[Harness, StatusPublisher]) -> None:
    h, publisher = harness
    publisher.publish([channel_change("queued-before-leading")])
    h.state = [channel_change("a"), channel_change("b")]
    publisher.set_fencing_token(1)
    batch = await h.next_batch()
    assert batch.replace_all
    assert [c.channel_upserted.unique_id for c in batch.changes] == ["a", "b"]


async def test_without_a_first_state_nothing_blanks_the_status(harness: tuple[Harness, StatusPublisher]) -> None:
    h, publisher = harness
    publisher.set_fencing_token(1)
    batch = await h.next_batch()  # only a heartbeat: no replace_all of an empty state
    assert not batch.replace_all
    assert not batch.changes


async def test_idle_stream_sends_heartbeats(harness: tuple[Harness, StatusPublisher]) -> None:
    h, publisher = harness
    h.state = []
    publisher.set_fencing_token(1)
    await h.next_batch()
    heartbeat = await h.next_batch()
    assert list(heartbeat.changes) == []
    assert not heartbeat.replace_all


async def test_a_broken_stream_resumes_with_the_full_state(harness: tuple[Harness, StatusPublisher]) -> None:
    h, publisher = harness
    h.state = [channel_change("a")]
    publisher.set_fencing_token(1)
    await h.next_batch()
    await h.stop_server()
    h.state = [channel_change("a"), channel_change("b")]
    publisher.publish([channel_change("b")])  # may be lost with the old stream
    await h.start_server()
    while True:
        batch = await h.next_batch()
        if batch.replace_all:
            break
    assert [c.channel_upserted.unique_id for c in batch.changes] == ["a", "b"]


class BreakingIngestCall:
    """A call the way grpc.aio runs one: a task of its own pulls the request iterator.

    ``fail()`` ends the call with UNAVAILABLE as a server going away does; like grpc.aio, it
    leaves the request-pulling task running, parked inside the iterator until the next request.
    """

    def __init__(self, requests: AsyncIterator[status_pb2.IngestBatch], sink: asyncio.Queue[status_pb2.IngestBatch]):
        self._acks: asyncio.Queue[status_pb2.IngestAck | None] = asyncio.Queue()
        self._dead = False
        self._sink = sink
        self.poller = asyncio.create_task(self._pull(requests))

    async def _pull(self, requests: AsyncIterator[status_pb2.IngestBatch]) -> None:
        async for batch in requests:
            if self._dead:
                return  # grpc.aio: the write fails on a finished call, the request is gone
            await self._sink.put(batch)
            await self._acks.put(status_pb2.IngestAck(sequence=batch.sequence))

    def fail(self) -> None:
        self._dead = True
        self._acks.put_nowait(None)

    def cancel(self) -> None:
        self.poller.cancel()
        self.fail()

    def __aiter__(self) -> AsyncIterator[status_pb2.IngestAck]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[status_pb2.IngestAck]:
        while (ack := await self._acks.get()) is not None:
            yield ack
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())


class BreakingIngestStub:
    def __init__(self) -> None:
        self.calls: list[BreakingIngestCall] = []
        self.batches: asyncio.Queue[status_pb2.IngestBatch] = asyncio.Queue()

    def Ingest(self, requests: AsyncIterator[status_pb2.IngestBatch]) -> BreakingIngestCall:
        self.calls.append(BreakingIngestCall(requests, self.batches))
        return self.calls[-1]


async def test_the_request_iterator_of_a_broken_stream_never_takes_the_new_streams_state() -> None:
    stub = BreakingIngestStub()
    state = [channel_change("a")]
    publisher = StatusPublisher(
        stub,  # type: ignore[arg-type]  # only Ingest is called
        source_id="pbx1",
        snapshot=lambda: state,
        retry=RetryPolicy(attempts=0, base=0.0, cap=0.0, jitter=0.0),
        heartbeat_interval=30,
    )
    task = asyncio.create_task(publisher.run())
    try:
        publisher.set_fencing_token(1)
        first = await asyncio.wait_for(stub.batches.get(), 5)
        assert first.replace_all
        # The old call's poller is now parked waiting for the next change when the call breaks.
        state = [channel_change("a"), channel_change("b")]
        stub.calls[0].fail()
        resumed = await asyncio.wait_for(stub.batches.get(), 5)
        assert resumed.replace_all
        assert [c.channel_upserted.unique_id for c in resumed.changes] == ["a", "b"]
        assert len(stub.calls) == 2
    finally:
        await publisher.stop()
        await asyncio.wait_for(task, 5)


async def test_a_fenced_publisher_stops_sending(harness: tuple[Harness, StatusPublisher]) -> None:
    h, publisher = harness
    h.state = []
    h.status.min_token = 5
    publisher.set_fencing_token(3)
    await wait_until(lambda: publisher.fenced, within=5, what="the refused publisher marks itself fenced")
    publisher.publish([channel_change("late")])
    # Negative check: a live publisher would send within its 0.2 s heartbeat interval.
    await asyncio.sleep(0.3)
    assert h.status.batches.empty()


async def test_a_publisher_refused_in_band_steps_down_at_once_whatever_status_the_stream_ends_with(
    harness: tuple[Harness, StatusPublisher],
) -> None:
    h, publisher = harness
    h.state = []
    h.status.min_token = 5
    h.status.refusal_read_as_internal = True
    with structlog.testing.capture_logs() as logs:
        publisher.set_fencing_token(3)
        await wait_until(lambda: publisher.fenced, within=5, what="the refused publisher marks itself fenced")
    assert h.status.streams == 1  # no retry
    assert [line["event"] for line in logs if line["log_level"] == "warning"] == [
        "ingest refused: fenced by a newer leader"
    ]


async def test_a_new_term_begun_before_the_old_stream_ended_keeps_publishing(
    harness: tuple[Harness, StatusPublisher],
) -> None:
    # Deposed and re-elected (Redis restarted empty) in one event-loop step: the sender sees its
    # old call cancelled only after the new token is set, and must open the new term's stream.
    h, publisher = harness
    h.state = [channel_change("a")]
    publisher.set_fencing_token(1)
    await h.next_batch()
    publisher.set_fencing_token(0)
    h.state = [channel_change("a"), channel_change("b")]
    publisher.set_fencing_token(2)
    while True:
        batch = await h.next_batch()
        if batch.fencing_token == 2 and batch.replace_all:
            break
    assert [c.channel_upserted.unique_id for c in batch.changes] == ["a", "b"]
    publisher.publish([channel_change("c")])
    later = await h.next_batch()
    assert [c.channel_upserted.unique_id for c in later.changes] == ["c"]


async def test_a_status_service_still_starting_is_waited_for_at_info_and_a_lost_stream_is_a_warning() -> None:
    h = Harness(free_port())  # the publisher dials it before the server binds it
    channel = aio_channel(f"127.0.0.1:{h.port}")
    publisher = StatusPublisher(
        status_pb2_grpc.StatusServiceStub(channel),
        source_id="pbx1",
        snapshot=h.snapshot,
        heartbeat_interval=0.2,
        retry=RetryPolicy(attempts=1000, base=0.02, cap=0.05, jitter=0.0),
    )
    h.state = [channel_change("a")]
    publisher.set_fencing_token(1)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(publisher.run())
        await wait_until(
            lambda: any(e["event"] == "waiting for the status service" for e in logs), within=10, what="waiting log"
        )
        await h.start_server()
        await h.next_batch()
        await h.stop_server()
        await wait_until(lambda: any(e["event"] == "ingest stream broken" for e in logs), within=30, what="broken log")
        await publisher.stop()
        await asyncio.wait_for(task, 5)
    await channel.close()
    waiting = [e for e in logs if e["event"] == "waiting for the status service"]
    broken = [e for e in logs if e["event"] == "ingest stream broken"]
    assert {e["log_level"] for e in waiting} == {"info"}
    assert {e["log_level"] for e in broken} == {"warning"}
    assert logs.index(waiting[-1]) < logs.index(broken[0])
