"""The caps per client key on the caller a credential names, else on the address, and believe
X-Forwarded-For only from the configured proxies — over a real uvicorn with the gateway's config."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devsupport.waiting import wait_until
from gateway.app import create_app
from tests.auth.harness import Keys, make_keys
from tests.gateway.harness import Backends, LiveGateway, served
from tests.gateway.sse import events

STREAM = "/api/queue-status/stream"
SNAPSHOT = "/api/queue-status/snapshot"


@pytest.fixture
async def keys(tmp_path: Path) -> AsyncIterator[Keys]:
    made = await make_keys(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    try:
        yield made
    finally:
        await made.store.close()


async def start(backends: Backends, keys: Keys, **overrides: Any) -> AsyncIterator[LiveGateway]:
    settings = backends.settings(database_url=keys.database_url, gateway_retry_after_seconds=7, **overrides)
    async for live in served(create_app(settings)):
        yield live


@pytest.fixture
async def gateway(backends: Backends, keys: Keys) -> AsyncIterator[LiveGateway]:
    async for live in start(backends, keys, gateway_max_connections_per_client=2, gateway_max_streams_per_client=1):
        yield live


@pytest.fixture
async def behind_proxy(backends: Backends, keys: Keys) -> AsyncIterator[LiveGateway]:
    async for live in start(
        backends,
        keys,
        gateway_max_connections_per_client=1,
        gateway_trusted_proxies=["127.0.0.1"],
        gateway_body_idle_seconds=20.0,
        gateway_body_timeout_seconds=30.0,
    ):
        yield live


def client_from(gateway: LiveGateway, address: str, token: str | None = None) -> httpx.AsyncClient:
    """An HTTP client whose connections come from ``address`` (any 127.x.y.z is this host)."""
    return httpx.AsyncClient(
        base_url=gateway.url,
        transport=httpx.AsyncHTTPTransport(local_address=address),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=20,
    )


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient) -> AsyncIterator[httpx.Response]:
    async with client.stream("GET", STREAM) as response:
        assert response.status_code == 200
        # Held while the stream is: a dropped reader is closed by the garbage collector, and the
        # response with it, which would end the stream.
        reader = events(response)
        assert (await anext(reader)).event == "snapshot"
        yield response


class Raw:
    """One TCP connection from ``source`` written to by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, gateway: LiveGateway, source: str = "127.0.0.1") -> Raw:
        return cls(*await asyncio.open_connection("127.0.0.1", gateway.port, local_addr=(source, 0)))

    async def send(self, method: str, path: str, *headers: str, body: bytes = b"") -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()

    async def status(self) -> tuple[int, str]:
        """The status code of the next answer and its raw head."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout=20)
        return int(head.split()[1]), head.decode("latin-1").lower()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def test_streams_are_capped_per_api_key_not_per_address(gateway: LiveGateway, keys: Keys) -> None:
    async with (
        client_from(gateway, "127.0.0.1", keys.read) as reader,
        client_from(gateway, "127.0.0.1", keys.operate) as operator,
        client_from(gateway, "127.0.0.2", keys.read) as reader_elsewhere,
        open_stream(reader),
        open_stream(operator),
    ):  # one each, from one address
        refused = await reader_elsewhere.get(STREAM)  # the same key from another address
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "7"
        assert refused.json()["error"]["details"]["limit"] == 1


async def test_connections_count_for_their_caller_once_a_request_names_it(gateway: LiveGateway, keys: Keys) -> None:
    token = f"Authorization: Bearer {keys.read}"
    held = [await Raw.open(gateway, "127.0.0.1"), await Raw.open(gateway, "127.0.0.3")]
    try:
        for conn in held:  # the cap (2) reached by one caller, from two addresses
            await conn.send("GET", SNAPSHOT, token)
            assert (await conn.status())[0] == 200
        third = await Raw.open(gateway, "127.0.0.4")
        try:
            await third.send("GET", SNAPSHOT, token)
            status, head = await third.status()
            assert status == 429
            assert "retry-after: 7" in head
            assert "connection: close" in head
            await asyncio.wait_for(third.reader.read(), timeout=10)  # EOF: the gateway closed it
        finally:
            await third.close()
        # Anonymous connections from those addresses are not the caller's: they count for the address.
        stranger = await Raw.open(gateway, "127.0.0.1")
        try:
            await stranger.send("GET", "/healthz")
            assert (await stranger.status())[0] == 200
        finally:
            await stranger.close()
    finally:
        for conn in held:
            await conn.close()


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_cap(behind_proxy: LiveGateway) -> None:
    slow = await Raw.open(behind_proxy)
    others: list[Raw] = []
    try:
        # A client of the proxy (10.0.0.1) with a request in flight: its body is still arriving.
        await slow.send(
            "POST",
            "/api/queues/workflow/jobs",
            "X-Forwarded-For: 10.0.0.1",
            "Content-Type: application/json",
            "Content-Length: 100",
            body=b'{"name": ',
        )

        async def answer(forwarded_for: str) -> tuple[int, str]:
            conn = await Raw.open(behind_proxy)  # more connections from the proxy than the cap: not refused
            others.append(conn)
            await conn.send("GET", "/healthz", f"X-Forwarded-For: {forwarded_for}")
            return await conn.status()

        async def same_client_refused() -> str | None:
            status, head = await answer("10.0.0.1")
            return head if status == 429 else None

        # Once the gateway holds the slow request, the same client is at its cap.
        head = await wait_until(same_client_refused, within=10, what="a second request of 10.0.0.1 refused")
        assert "retry-after: 7" in head
        assert "connection: close" not in head  # the proxy's connection is many clients': kept open
        assert (await answer("10.0.0.2"))[0] == 200
        assert (await answer("192.0.2.7, 10.0.0.3"))[0] == 200  # the proxy's own view: the last hop
    finally:
        for conn in [slow, *others]:
            await conn.close()


async def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(gateway: LiveGateway) -> None:
    held = [await Raw.open(gateway), await Raw.open(gateway)]
    try:
        for conn in held:
            await conn.send("GET", "/healthz", "Connection: keep-alive")
            assert (await conn.status())[0] == 200
        spoofing = await Raw.open(gateway)
        try:
            await spoofing.send("GET", "/healthz", "X-Forwarded-For: 10.9.9.9")
            raw = await asyncio.wait_for(spoofing.reader.read(), timeout=20)
        finally:
            await spoofing.close()
        status_line, _, rest = raw.partition(b"\r\n")
        assert status_line.split()[1] == b"429"  # refused at connect: counted for 127.0.0.1
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["code"] == "RESOURCE_EXHAUSTED"
    finally:
        for conn in held:
            await conn.close()
