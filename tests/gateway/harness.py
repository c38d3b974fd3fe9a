"""The gateway tests' building blocks: real grpc.aio backends on loopback (fake StatusService +
health), the sample contact center they serve, an in-process httpx client for an app, and a live
uvicorn server for SSE and the browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from switchboard.status.v1 import status_pb2 as S

from devsupport.auth import AUTH_HEADERS
from devsupport.ports import bound_socket
from devsupport.waiting import wait_until
from gateway.http_server import server_config
from gateway.settings import GatewaySettings
from tests.gateway.fake_status import FakeStatusService, GrpcBackend, operator

NOW = 1_700_000_000.0


def sample_center(fake: FakeStatusService) -> None:
    """Two queues; Local/1001@agents in both (own pause state each), one paused member, one call."""
    fake.seed(
        operators=[
            operator("sales", "Local/1001@agents", "Алиса", calls_taken=3, login_time=int(NOW) - 3600),
            operator(
                "support",
                "Local/1001@agents",
                "Алиса",
                paused=True,
                paused_reason="Lunch",
                status_code=2,
                status=S.MEMBER_STATUS_IN_USE,
                in_call=True,
                current_call_id="Local/2001@callers-0001;2",
            ),
            operator("sales", "PJSIP/1002", "Bob", status_code=6, status=S.MEMBER_STATUS_RINGING, penalty=2),
        ],
        queues=[
            S.Queue(
                name="sales",
                strategy="ringall",
                waiting=1,
                callers=[
                    S.Caller(
                        channel="Local/2002@callers-0002;2",
                        caller_id_num="5550002",
                        caller_id_name="Carol",
                        position=1,
                        waiting_since=NOW - 42,
                        unique_id="1700000000.2",
                    )
                ],
                completed=7,
                abandoned=1,
                hold_time=12,
                talk_time=95,
                service_level=60,
                service_level_perf=85.5,
                longest_wait=42.0,
            ),
            S.Queue(name="support", strategy="leastrecent"),
        ],
        channels=[
            S.Channel(
                channel_name="Local/2001@callers-0001;2",
                unique_id="1700000000.1",
                linked_id="1700000000.0",
                caller_id_num="5550001",
                caller_id_name="Dave",
                context="callers",
                extension="s",
                state="Up",
                state_code=6,
                bridged_to="Local/1001@agents-0003;1",
                started_at=NOW - 125,
            )
        ],
    )


class Backends:
    """One loopback grpc.aio server per gateway backend (BACKEND_NAMES); ``.status`` serves the fake."""

    def __init__(self, servers: dict[str, GrpcBackend]) -> None:
        self.servers = servers

    def __getattr__(self, name: str) -> GrpcBackend:
        try:
            return self.__dict__["servers"][name]
        except KeyError:
            raise AttributeError(name) from None

    def settings(self, **overrides: object) -> GatewaySettings:
        values: dict[str, object] = {f"{name}_addr": server.address for name, server in self.servers.items()}
        values.update(
            # Every check in these tests answers at once (serving, not serving, or refused): the
            # bound only has to outlast a loaded machine's scheduling, which 0.5 s once did not.
            readiness_timeout_seconds=5.0,
            rpc_timeout_seconds=2.0,
            sse_ping_seconds=1.0,
            # These tests drive the per-request gRPC path (what the mirror falls back to) through
            # a fake whose state they change directly; the mirror has its own tests on the real service.
            gateway_status_mirror=False,
        )
        values.update(overrides)
        return GatewaySettings(**values)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        return {f"{name.upper()}_ADDR": server.address for name, server in self.servers.items()}


async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test", headers=AUTH_HEADERS
        ) as client,
    ):
        yield client


class LiveGateway:
    """The app served by a real uvicorn on a free loopback port, inside the test's event loop.

    The port is bound from construction (``url`` is known before the app is, for settings that
    name it) and handed to uvicorn as a socket, so no other process can take it in between.
    ``stop`` closes it whether or not the app was started."""

    def __init__(self, app: FastAPI | None = None) -> None:
        self._app = app
        self.sock = bound_socket()
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            raise ValueError("this LiveGateway was given no app yet (start takes one)")
        return self._app

    async def start(self, app: FastAPI | None = None) -> None:
        self._app = app or self._app
        server = self.server = uvicorn.Server(
            server_config(self.app, self.app.state.settings, host="127.0.0.1", port=self.port)
        )
        task = self.task = asyncio.create_task(server.serve(sockets=[self.sock]))

        def serving() -> bool:
            if task.done():
                task.result()  # uvicorn gave up: its error, not a timeout
            return bool(server.started)

        await wait_until(serving, within=10, what=f"uvicorn serving on {self.url}")

    async def stop(self) -> None:
        try:
            if self.server is not None and self.task is not None:
                self.server.should_exit = True
                await asyncio.wait_for(self.task, timeout=10)
        finally:
            self.sock.close()  # uvicorn closes it as it stops; not when it never started


async def served(app: FastAPI) -> AsyncIterator[LiveGateway]:
    """A fixture body: ``app`` on a live uvicorn for the test's duration."""
    live = LiveGateway(app)
    try:
        await live.start()
        yield live
    finally:
        await live.stop()


@asynccontextmanager
async def live_stream(
    app: FastAPI, path: str, params: Mapping[str, str | Sequence[str]] | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.Response]]:
    """``app`` on a live uvicorn (SSE needs one: ASGITransport buffers the whole response), and a
    client with a GET of ``path`` open on it, its response's headers in, for the block."""
    async with (
        asynccontextmanager(served)(app) as live,
        httpx.AsyncClient(base_url=live.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", path, params=params) as response,
    ):
        yield client, response
