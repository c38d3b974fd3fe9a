"""The server half of AMI, shared by the replay server and the call-center simulator.

:class:`ServerSession` owns one client socket: it sends the banner, parses the client's actions
with the same :class:`FrameParser` the client uses, and answers what every Asterisk answers
the same way (``Challenge``, ``Ping``, ``Events``, ``Logoff``, ``Permission denied`` before
login, ``Missing action in request``). ``Login`` and all other actions go to an
:class:`ActionHandler` — the recording or the call-center model decides those.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
import random
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, str]]
BANNER = "Asterisk Call Manager/11.0.0"
_ALWAYS_ALLOWED = frozenset({"login", "challenge", "logoff"})


def encode_frame(headers: Iterable[tuple[str, str]]) -> bytes:
    """One frame as Asterisk writes it: ``Key: value`` lines, CRLF, closed by an empty line."""
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("utf-8")


def with_action_id(headers: Iterable[tuple[str, str]], action_id: str | None) -> list[tuple[str, str]]:
    """The headers with every ``ActionID`` replaced by ``action_id`` (dropped when ``None``)."""
    out: list[tuple[str, str]] = []
    for key, value in headers:
        if key.lower() == "actionid":
            if action_id is not None:
                out.append((key, action_id))
        else:
            out.append((key, value))
    return out


def reply(action: Frame, response: str = "Success", *headers: tuple[str, str]) -> list[tuple[str, str]]:
    """A response frame to ``action`` in Asterisk's header order (Response, ActionID, ...)."""
    out = [("Response", response)]
    action_id = action.action_id
    if action_id is not None:
        out.append(("ActionID", action_id))
    out.extend(headers)
    return out


@dataclass(frozen=True, slots=True)
class Credentials:
    """One AMI user, checked the way manager.c does (plain secret or MD5 of challenge+secret)."""

    username: str
    secret: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret='***')"

    def accepts(self, login: Frame, challenge: str | None) -> bool:
        if (login.get("Username") or "") != self.username:
            return False
        if (login.get("AuthType") or "").lower() == "md5":
            if challenge is None:
                return False
            expected = hashlib.md5((challenge + self.secret).encode()).hexdigest()
            return (login.get("Key") or "").lower() == expected
        return (login.get("Secret") or "") == self.secret


class ActionHandler(Protocol):
    async def on_login(self, session: ServerSession, action: Frame) -> bool:
        """Answer ``Login``; return whether the session is now logged in."""
        ...

    async def on_action(self, session: ServerSession, action: Frame, name: str) -> None:
        """Answer any other action of a logged-in client."""
        ...


class ServerSession:
    """One client connection of an AMI server."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        banner: str = BANNER,
        challenge: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.banner = banner
        self.parser = FrameParser()
        self.logged_in = False
        self.events_on = True
        self.username: str | None = None
        self.closed = asyncio.Event()
        self._fixed_challenge = challenge
        self._rng = rng or random.Random()
        self.challenge: str | None = None
        self._lock = asyncio.Lock()
        self.max_buffer = 16 << 20

    async def send(self, *frames: Headers) -> None:
        await self.send_raw(b"".join(encode_frame(f) for f in frames))

    async def send_raw(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        async with self._lock:
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, OSError):
                self.closed.set()

    def write_now(self, data: bytes) -> None:
        """Write without yielding, so bytes go out exactly in call order (model snapshots)."""
        if self.closed.is_set() or self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > self.max_buffer:
            log.warning("AMI client too slow (%d bytes unsent): disconnecting it", self.max_buffer)
            self.closed.set()
            self.writer.transport.abort()
            return
        self.writer.write(data)

    async def close(self) -> None:
        self.closed.set()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def serve(self, handler: ActionHandler) -> None:
        """Banner, then answer actions until the client leaves or the session is closed."""
        await self.send_raw(f"{self.banner}\r\n".encode())
        reading = asyncio.ensure_future(self._read_actions(handler))
        closing = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait({reading, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reading.cancel()
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            await self.close()

    async def _read_actions(self, handler: ActionHandler) -> None:
        while not self.closed.is_set():
            try:
                data = await self.reader.read(1 << 16)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            for action in self.parser.feed(data):
                await self._answer(handler, action)
                if self.closed.is_set():
                    return

    async def _answer(self, handler: ActionHandler, action: Frame) -> None:
        name = action.get("Action")
        if not name:
            await self.send(reply(action, "Error", ("Message", "Missing action in request")))
            return
        lowered = name.lower()
        if not self.logged_in and lowered not in _ALWAYS_ALLOWED:
            await self.send(reply(action, "Error", ("Message", "Permission denied")))
            return
        if lowered == "challenge":
            if (action.get("AuthType") or "").lower() != "md5":
                await self.send(reply(action, "Error", ("Message", "Must specify AuthType")))
                return
            self.challenge = self._fixed_challenge or str(self._rng.randrange(10**8, 10**9))
            await self.send(reply(action, "Success", ("Challenge", self.challenge)))
        elif lowered == "login":
            if self.logged_in:
                await self.send(reply(action, "Success", ("Message", "Already authenticated")))
                return
            events = (action.get("Events") or "on").lower()
            self.events_on = events not in ("off", "no", "false", "0")
            self.logged_in = await handler.on_login(self, action)
            if self.logged_in:
                self.username = action.get("Username")
        elif lowered == "logoff":
            await self.send(reply(action, "Goodbye", ("Message", "Thanks for all the fish.")))
            await self.close()
        elif lowered == "ping":
            stamp = f"{time.time():.6f}"
            await self.send(reply(action, "Success", ("Ping", "Pong"), ("Timestamp", stamp)))
        elif lowered == "events":
            mask = (action.get("EventMask") or "on").lower()
            self.events_on = mask not in ("off", "no", "false", "0")
            await self.send(reply(action, "Success", ("Events", "On" if self.events_on else "Off")))
        else:
            await handler.on_action(self, action, name)


def permission_denied(action: Frame) -> list[tuple[str, str]]:
    return reply(action, "Error", ("Message", "Permission denied"))


class AmiTcpServer(abc.ABC):
    """The listening socket's lifecycle, shared by the replay server and the simulator.

    Subclasses set ``host``/``port``, implement ``_handle`` (one client connection) and
    ``_close_sessions``, and may extend :meth:`start` / :meth:`close`.
    """

    host: str
    port: int
    tls: ssl.SSLContext | None = None
    """Set before :meth:`start` to serve AMI over TLS (as Asterisk's ``tlsenable``), for tests."""
    _server: asyncio.Server | None = None

    @abc.abstractmethod
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection."""

    @abc.abstractmethod
    async def _close_sessions(self) -> None:
        """Close every client connection."""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_sessions()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()
