"""The SSE fan-out's per-client buffer (gateway.status_fanout): a client that falls behind is cut off."""

from __future__ import annotations

import json

from gateway import status_fanout
from gateway.status_fanout import MAX_PENDING_FRAMES


async def test_a_client_falling_behind_gets_one_error_event_and_its_stream_ends() -> None:
    left: list[object] = []
    client = status_fanout._Client(left.append)
    for index in range(MAX_PENDING_FRAMES + 1):
        client.push(f"data: {index}\r\n\r\n".encode())
    chunks = [chunk async for chunk in client.frames()]
    assert left == [client]
    assert len(chunks) == 1
    event, data = chunks[0].decode().split("\r\n")[:2]
    assert event == "event: error"
    assert json.loads(data.removeprefix("data: "))["error"]["code"] == "RESOURCE_EXHAUSTED"


async def test_frames_waiting_for_a_client_go_out_in_one_write() -> None:
    client = status_fanout._Client(lambda _: None, [b"a", b"b"])
    client.push(b"c")
    stream = client.frames()
    assert await anext(stream) == b"abc"
    client.end()
    assert [chunk async for chunk in stream] == []
