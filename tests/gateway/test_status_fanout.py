"""The SSE fan-out (gateway.status_fanout): a client that falls behind is cut off; a client's frames
go out joined and in order, at the feed's pace, however long its writes take."""

from __future__ import annotations

import json

from bench._sse_pace import PaceRun, run_paced_fanout
from gateway import fanout_client
from gateway.fanout_client import MAX_PENDING_FRAMES


async def test_a_client_falling_behind_gets_one_error_event_and_its_stream_ends() -> None:
    left: list[object] = []
    client = fanout_client.FanoutClient(left.append)
    for index in range(MAX_PENDING_FRAMES + 1):
        client.push(f"data: {index}\r\n\r\n".encode())
    chunks = [chunk async for chunk in client.frames()]
    assert left == [client]
    assert len(chunks) == 1
    event, data = chunks[0].decode().split("\r\n")[:2]
    assert event == "event: error"
    assert json.loads(data.removeprefix("data: "))["error"]["code"] == "RESOURCE_EXHAUSTED"


async def test_frames_waiting_for_a_client_go_out_in_one_write() -> None:
    client = fanout_client.FanoutClient(lambda _: None, [b"a", b"b"])
    client.push(b"c")
    stream = client.frames()
    assert await anext(stream) == b"abc"
    client.end()
    assert [chunk async for chunk in stream] == []


# 100 clients whose writes cost 0.3 ms: a round of writes takes 30 ms.
CLIENTS, LAST, WRITE_COST_S = 100, 150, 0.0003
STALL_S = 0.03
"""One slow turn of the loop (the process descheduled): longer than the 20 ms flush interval of old."""


def _each_frame_once_in_order(run: PaceRun) -> bool:
    return all(ids == list(range(1, LAST + 1)) for ids in run.received)


async def test_the_shared_watch_keeps_pace_with_many_clients_whose_writes_cost_time() -> None:
    """Woken per message, N clients' writes made every read of the shared watch cost N writes, and
    the feed fell behind the status service for good (the bench's stall at 250 SSE clients). How
    long the reads take is a figure of bench/gateway_sse_bench.py, not asserted here."""
    run = await run_paced_fanout(CLIENTS, LAST, WRITE_COST_S)
    assert _each_frame_once_in_order(run)
    # Per message this would be 150 writes per client; paced, a client's write carries many frames.
    assert max(run.writes) < LAST / 3, run.writes


async def test_a_stall_longer_than_the_flush_interval_leaves_the_writes_joined() -> None:
    """One slow turn (the process descheduled) let the 20 ms flush timer of old fire amid the reads;
    counted from the first frame after that wake, the next interval was used up by the clients' 30 ms
    of writes, so every turn woke them again for a frame or two: 74 writes each, the feed reading one
    change set per round of 100 writes. Rounds paced by their own cost keep the writes joined."""
    run = await run_paced_fanout(CLIENTS, LAST, WRITE_COST_S, stall_at=5, stall_s=STALL_S)
    assert _each_frame_once_in_order(run)
    assert max(run.writes) < LAST / 3, run.writes
