"""bench/_sse_clients.py: an SSE client of the benchmark knows when the gateway cut its stream off."""

from __future__ import annotations

import pytest

from bench._sse_clients import SseClient

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: snapshot\ndata: {}\n\n"


async def streaming() -> SseClient:
    client = SseClient(b"GET / HTTP/1.1\r\n\r\n")
    client.data_received(HEAD)
    assert client.snapshot.done()
    return client


@pytest.mark.timeout(10)
async def test_an_error_event_split_across_two_reads_is_a_cut_off() -> None:
    client = await streaming()
    client.data_received(b"event: changes\ndata: {}\n\nevent: er")
    assert not client.cut_off
    client.data_received(b'ror\ndata: {"code": "RESOURCE_EXHAUSTED"}\n\n')
    assert client.cut_off


@pytest.mark.timeout(10)
async def test_a_connection_the_gateway_closed_is_a_cut_off_and_one_the_client_closed_is_not() -> None:
    dropped, closed = await streaming(), await streaming()
    dropped.connection_lost(None)
    closed.closing = True
    closed.connection_lost(None)
    assert dropped.cut_off
    assert not closed.cut_off
