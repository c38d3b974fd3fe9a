"""Limits on what one client can make the gateway hold, over a real uvicorn with the gateway's own
server config: body size (413 while it arrives), body and header pace (408), connections and
Server-Sent-Event streams per client (429 with Retry-After)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from devsupport.auth import AUTH_HEADERS, BOOTSTRAP_TOKEN
from devsupport.waiting import wait_until
from gateway.app import create_app
from tests.gateway.harness import Backends, LiveGateway, served
from tests.gateway.sse import events

LIMIT = 4096
ENQUEUE = "/api/queues/workflow/jobs"


@pytest.fixture
async def gateway(backends: Backends) -> AsyncIterator[LiveGateway]:
    settings = backends.settings(
        gateway_max_body_bytes=LIMIT,
        gateway_body_idle_seconds=1.0,
        gateway_body_timeout_seconds=3.0,
        gateway_header_timeout_seconds=1.5,
        gateway_max_connections_per_client=4,
        gateway_max_streams_per_client=2,
        gateway_retry_after_seconds=7,
    )
    async for live in served(create_app(settings)):
        yield live


class RawConnection:
    """One TCP connection to the gateway written to byte by byte, as a misbehaving client would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, gateway: LiveGateway) -> RawConnection:
        return cls(*await asyncio.open_connection("127.0.0.1", gateway.port))

    def head(self, method: str, path: str, *headers: str) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {BOOTSTRAP_TOKEN}", *headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> tuple[int, dict[str, str], Any]:
        """The response (status, lower-cased headers, JSON body); the gateway closes after it."""
        raw = await asyncio.wait_for(self.reader.read(), timeout=20)
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines)
        return int(status_line.split()[1]), headers, json.loads(body)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def test_a_declared_length_over_the_limit_is_413_before_the_body_is_sent(gateway: LiveGateway) -> None:
    conn = await RawConnection.open(gateway)
    try:
        await conn.send(conn.head("POST", ENQUEUE, "Content-Type: application/json", "Content-Length: 104857600"))
        status, headers, body = await conn.answer()  # not one byte of the 100 MB was sent
    finally:
        await conn.close()
    assert status == 413
    assert headers["connection"] == "close"
    assert body["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert body["error"]["details"]["limit"] == LIMIT
    assert f"{LIMIT} bytes" in body["error"]["message"]


async def test_a_chunked_body_is_413_as_soon_as_it_passes_the_limit(gateway: LiveGateway) -> None:
    conn = await RawConnection.open(gateway)
    answer = asyncio.ensure_future(conn.answer())
    chunk = b" " * 65536
    sent = 0
    try:
        await conn.send(conn.head("POST", ENQUEUE, "Content-Type: application/json", "Transfer-Encoding: chunked"))
        while not answer.done() and sent < 100 * 1024 * 1024:  # a client that reads while it writes
            await conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        status, headers, body = await answer
    finally:
        answer.cancel()
        await conn.close()
    assert status == 413
    assert headers["connection"] == "close"
    assert body["error"]["details"]["limit"] == LIMIT
    assert sent < 100 * 1024 * 1024  # answered long before the client's 100 MB were through


async def test_a_body_under_the_limit_reaches_the_route(gateway: LiveGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=AUTH_HEADERS, timeout=20) as client:
        answer = await client.post(ENQUEUE, json={"name": "x" * (LIMIT // 2)})
    assert answer.status_code not in {408, 413}


async def test_a_body_that_stops_arriving_is_408(gateway: LiveGateway) -> None:
    conn = await RawConnection.open(gateway)
    try:
        await conn.send(conn.head("POST", ENQUEUE, "Content-Type: application/json", "Content-Length: 100"))
        await conn.send(b'{"name": ')  # and then nothing
        status, headers, body = await conn.answer()
    finally:
        await conn.close()
    assert status == 408
    assert headers["connection"] == "close"
    assert body["error"]["code"] == "DEADLINE_EXCEEDED"
    assert "no data for 1 s" in body["error"]["message"]


async def test_a_body_trickling_in_past_the_whole_body_timeout_is_408(gateway: LiveGateway) -> None:
    conn = await RawConnection.open(gateway)
    answer = asyncio.ensure_future(conn.answer())
    try:
        await conn.send(conn.head("POST", ENQUEUE, "Content-Type: application/json", "Content-Length: 4000"))
        while not answer.done():  # one byte well within the idle timeout, until the gateway gives up
            await conn.send(b" ")
            await asyncio.wait([answer], timeout=0.1)
        status, _, body = await answer
    finally:
        answer.cancel()
        await conn.close()
    assert status == 408
    assert "whole body must arrive within 3 s" in body["error"]["message"]


async def test_headers_that_never_complete_are_408_and_closed(gateway: LiveGateway) -> None:
    conn = await RawConnection.open(gateway)
    try:
        await conn.send(b"GET /api/queues HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line, ever
        status, headers, body = await conn.answer()
    finally:
        await conn.close()
    assert status == 408
    assert headers["connection"] == "close"
    assert "headers not received" in body["error"]["message"]


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("switchboard_gateway_connections_refused_total", {"reason": reason}) or 0.0


async def test_a_connection_that_sends_nothing_is_closed_and_counted(gateway: LiveGateway) -> None:
    before = refused("header_timeout")
    conn = await RawConnection.open(gateway)
    try:
        status, _, _ = await conn.answer()
    finally:
        await conn.close()
    assert status == 408
    assert refused("header_timeout") == before + 1


async def test_connections_past_the_per_client_cap_get_429_with_retry_after(gateway: LiveGateway) -> None:
    before = refused("too_many_connections")
    held: list[RawConnection] = []
    try:
        for _ in range(4):  # each one is served: it counts while it is open
            # Each request is sent as soon as its connection opens: an opened connection that
            # waits for its turn could meet the 1.5 s header timeout on a loaded machine.
            conn = await RawConnection.open(gateway)
            held.append(conn)
            # Anonymous: a connection counts for its address until a request names a caller.
            await conn.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
            assert (await conn.reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
        extra = await RawConnection.open(gateway)
        try:
            status, headers, body = await extra.answer()
        finally:
            await extra.close()
        assert status == 429
        assert headers["retry-after"] == "7"
        assert body["error"]["code"] == "RESOURCE_EXHAUSTED"
        assert refused("too_many_connections") == before + 1
    finally:
        for conn in held:
            await conn.close()

    async def served() -> bool:
        again = await RawConnection.open(gateway)
        try:
            await again.send(again.head("GET", "/healthz", "Connection: close"))
            status, _, _ = await again.answer()
        finally:
            await again.close()
        return status == 200

    await wait_until(served, within=10, what="a new connection served once the held ones closed")


async def test_streams_past_the_per_client_cap_get_429_with_retry_after(gateway: LiveGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=AUTH_HEADERS, timeout=20) as client:
        async with (
            client.stream("GET", "/api/queue-status/stream") as first,
            client.stream("GET", "/api/queue-status/stream") as second,
        ):
            for response in (first, second):
                assert response.status_code == 200
                assert (await anext(events(response))).event == "snapshot"
            refused = await client.get("/api/queue-status/stream")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "7"
            assert refused.json()["error"]["details"]["limit"] == 2
            assert (await client.get("/api/queues/health")).status_code != 429  # only streams are capped

        async def stream_opens() -> bool:
            async with client.stream("GET", "/api/queue-status/stream") as later:
                return later.status_code == 200

        await wait_until(stream_opens, within=10, what="a new stream served once the first two closed")
