"""Helpers for the AMI client / replay / simulator tests: fixture paths, fast retry policies,
and a scripted AMI server for the cases no recording shows (silence, drops, garbage)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from pydantic import SecretStr

from runtime.retry import RetryPolicy
from services.ami_ingest.ami.client import AmiClient, AmiClientConfig, AmiEvent, ConnectHook
from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser
from services.ami_ingest.simulator.protocol import encode_frame, reply

FIXTURES = Path(os.environ.get("AMI_FIXTURES", "/work/shared/fixtures/ami"))
SECRET = "s3cr3t-Never-Log-Me"


def fixture(name: str) -> Path:
    path = FIXTURES / f"{name}.ami"
    assert path.exists(), f"missing AMI fixture {path}"
    return path


def fast_retry(base: float = 0.02, cap: float = 0.2, jitter: float = 0.0) -> RetryPolicy:
    return RetryPolicy(attempts=0, base=base, cap=cap, multiplier=2.0, jitter=jitter)


def client_config(port: int, **overrides: object) -> AmiClientConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "switchboard",
        "secret": SecretStr(SECRET),
        "auth": "plain",
        "retry": fast_retry(),
        "connect_timeout": 2.0,
        "action_timeout": 3.0,
    }
    values.update(overrides)
    return AmiClientConfig(**values)  # type: ignore[arg-type]


class EventCollector:
    """Consumes ``client.events()`` in the background into a list."""

    def __init__(self, client: AmiClient) -> None:
        self.events: list[AmiEvent] = []
        self.arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run(client))

    async def _run(self, client: AmiClient) -> None:
        async for event in client.events():
            self.events.append(event)
            self.arrived.set()

    def names(self) -> list[str | None]:
        return [event.frame.event for event in self.events]

    async def wait_for(self, predicate: Callable[[list[AmiEvent]], bool], limit: float = 5.0) -> None:
        async with asyncio.timeout(limit):
            while not predicate(self.events):
                self.arrived.clear()
                await self.arrived.wait()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def running_client(
    config: AmiClientConfig, on_connect: ConnectHook | None = None
) -> AsyncIterator[tuple[AmiClient, EventCollector]]:
    client = AmiClient(config, on_connect=on_connect)
    client.start()
    collector = EventCollector(client)
    try:
        yield client, collector
    finally:
        await client.close()
        await collector.stop()


class ScriptedAmi:
    """A minimal AMI server whose misbehaviour tests choose: no Pong, drops, raw bytes.

    It accepts any Login, answers Ping (unless ``pong`` is False) and hands every other action
    to ``on_action`` (default: ``Response: Success``).
    """

    def __init__(self, *, pong: bool = True) -> None:
        self.pong = pong
        self.port = 0
        self.connections = 0
        self.actions: list[Frame] = []
        self.on_action: Callable[[Frame], bytes] | None = None
        self.connected = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedAmi:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self._writers[-1]

    async def push(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def drop(self) -> None:
        """Close the current connection abruptly (no Goodbye)."""
        self.connected.clear()
        self.writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        parser = FrameParser()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for action in parser.feed(data):
                    self.actions.append(action)
                    writer.write(self._answer(action))
                await writer.drain()

    def _answer(self, action: Frame) -> bytes:
        name = (action.get("Action") or "").lower()
        if name == "login":
            self.connected.set()
            return encode_frame(reply(action, "Success", ("Message", "Authentication accepted")))
        if name == "ping":
            return encode_frame(reply(action, "Success", ("Ping", "Pong"))) if self.pong else b""
        if self.on_action is not None:
            return self.on_action(action)
        return encode_frame(reply(action, "Success"))
