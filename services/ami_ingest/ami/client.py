"""The AMI client: stays connected and logged in forever, and hands out live events in order.

Lifecycle of :class:`AmiClient` (``start()`` / ``async with``):

1. connect to ``host:port`` and read the banner;
2. ``Login`` — plain (``Secret``) or MD5 (``Challenge`` then ``Key = md5(challenge + secret)``)
   with ``Events: on``; a refusal raises :class:`AmiAuthError` inside the loop, is logged
   (without the secret) and counted in ``stats["login_failures"]``;
3. run the async ``on_connect`` hook (the ingest resyncs there) while events keep flowing;
4. send ``Ping`` every ``ping_interval`` s; no answer within ``ping_timeout`` → dead → reconnect;
5. on any failure wait ``retry.delay_for(n)`` (capped exponential backoff with jitter, ``n``
   counting failures since the last good login) and start over, until :meth:`close`.

The reconnect loop retries every ``Exception``, but a ``CancelledError`` nobody asked for (from
the ``on_connect`` hook: the ingest's resync makes gRPC calls, which raise one once their channel
is closed) or an error closing a transport ends it, and a leader would keep its lease with no
AMI session. With ``tasks`` (a :class:`runtime.supervision.TaskSupervisor`) that is a death,
logged at ERROR and turning the service's liveness NOT_SERVING; :meth:`close` is not.

Every frame the server sends gets a sequence number that never restarts across reconnects.
The live events of one socket read travel as one :class:`EventBatch` (:meth:`AmiClient.event_batches`):
one queue hop per read instead of one per event, and no object built per event. A ``read_gate``
(the ingest's room in its inbox) is awaited before each socket read.
Live events (:class:`AmiEvent`, or a batch's ``seqs``) carry theirs and the number of the connection they came on;
:class:`~services.ami_ingest.ami.transport.ActionResult` carries the numbers of a list's
response, items and completion — so the resync can tell which live events arrived mid-list.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import SecretStr

from runtime.background import STOP_WITHIN_SECONDS
from runtime.logging import get_logger
from runtime.retry import RetryPolicy
from runtime.supervision import TaskSupervisor, stop_tasks
from services.ami_ingest.ami.batch import AmiEvent, EventBatch
from services.ami_ingest.ami.errors import AmiAuthError, AmiConnectionLost, AmiNotConnected, AmiTimeout
from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.transport import ActionHeaders, ActionResult, AmiTransport, ReadGate
from services.ami_ingest.ami.wire import FrameParser

log = get_logger(__name__)

__all__ = ["ActionResult", "AmiClient", "AmiClientConfig", "AmiConnection", "AmiEvent", "EventBatch"]


class AmiConnection(Protocol):
    """What the ingest needs from an AMI source; :class:`AmiClient` and the test fake implement it."""

    async def send_action(
        self, action: str, headers: ActionHeaders = (), *, response_timeout: float | None = None
    ) -> ActionResult: ...

    def events(self) -> AsyncIterator[AmiEvent]: ...

    def event_batches(self) -> AsyncIterator[EventBatch]:
        """The same events as :meth:`events`, as the non-empty batches they arrived in."""
        ...

    @property
    def queued_events(self) -> int:
        """Live events received but not yet taken from :meth:`events` / :meth:`event_batches`."""
        ...


ConnectHook = Callable[["AmiClient"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AmiClientConfig:
    host: str
    port: int
    username: str
    secret: SecretStr = field(repr=False)
    auth: Literal["plain", "md5"] = "md5"
    events: str = "on"
    connect_timeout: float = 5.0
    action_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 5.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=0, base=0.5, cap=30.0))
    tls: ssl.SSLContext | None = None
    """Speak AMI over TLS (Asterisk's ``tlsenable``, usually port 5039); None: plain TCP."""
    tls_server_name: str | None = None
    """The name the server's certificate must carry; None: ``host``."""
    action_id_prefix: str = field(default_factory=lambda: f"sb{secrets.token_hex(3)}")


class AmiClient:
    """A self-healing AMI session (see the module docstring); one consumer of :meth:`events`."""

    def __init__(
        self,
        config: AmiClientConfig,
        *,
        on_connect: ConnectHook | None = None,
        on_disconnect: ConnectHook | None = None,
        read_gate: ReadGate | None = None,
        tasks: TaskSupervisor | None = None,
    ) -> None:
        self.config = config
        self._tasks = tasks
        self._read_gate = read_gate
        self.stats: collections.Counter[str] = collections.Counter()
        self.connection_number = 0
        self.last_error: BaseException | None = None
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._seq = itertools.count(1)
        self._events: asyncio.Queue[EventBatch | None] = asyncio.Queue()
        self._queued = 0
        self._seqs: list[int] = []
        self._frames: list[Frame] = []
        """Live events of the current read sorted out one frame at a time (an action pending)."""
        self._transport: AmiTransport | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._where = f"{config.host}:{config.port}"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._run(), name="ami-client")
            if self._tasks is not None:
                self._tasks.watch(self._supervisor)

    async def __aenter__(self) -> AmiClient:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reconnecting, log off politely if connected, end :meth:`events`."""
        self._closing = True
        if self._tasks is not None:
            self._tasks.release(self._supervisor)  # it ends on purpose from here on
        transport = self._transport
        if transport is not None and self._ready.is_set():
            with contextlib.suppress(Exception):
                await transport.send_action("Logoff", response_timeout=1.0)
        if self._supervisor is not None:
            await stop_tasks([self._supervisor], STOP_WITHIN_SECONDS)  # bounded: a lost cancel is retried
            self._supervisor = None
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()
        self._ready.clear()
        self._events.put_nowait(None)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    @property
    def queued_events(self) -> int:
        # Frames are numbered and queued in wire order as they are read (each read's batch before
        # the next await), so once an action's answer is complete every earlier live event is
        # already in this queue.
        return self._queued

    @property
    def parser_malformed(self) -> collections.Counter[str]:
        """Malformed-input counters of the current connection's parser."""
        return self._transport.parser.malformed if self._transport else collections.Counter()

    async def wait_connected(self) -> None:
        """Wait until logged in (wrap in ``asyncio.timeout`` to bound it)."""
        await self._ready.wait()

    # -- AmiConnection ---------------------------------------------------------------------
    async def send_action(
        self, action: str, headers: ActionHeaders = (), *, response_timeout: float | None = None
    ) -> ActionResult:
        """Send on the current logged-in connection; :class:`AmiNotConnected` if there is none."""
        transport = self._transport
        if transport is None or transport.closed.is_set() or not self._ready.is_set():
            raise AmiNotConnected(f"AMI {self._where} is not connected")
        return await transport.send_action(action, headers, response_timeout=response_timeout)

    async def events(self) -> AsyncIterator[AmiEvent]:
        """Live events in wire order across reconnects; ends after :meth:`close`."""
        async for batch in self.event_batches():
            for event in batch:
                yield event

    async def event_batches(self) -> AsyncIterator[EventBatch]:
        """Live events in wire order, one batch per socket read; ends after :meth:`close`."""
        while True:
            batch = await self._events.get()
            if batch is None:
                return
            self._queued -= len(batch)
            yield batch

    # -- internals -------------------------------------------------------------------------
    def _deliver(self, seq: int, frame: Frame) -> None:
        self._seqs.append(seq)
        self._frames.append(frame)

    def _deliver_all(self, seqs: range, frames: list[Frame]) -> None:
        """A read of nothing but live events: its frames become a batch as they are."""
        self._flush()  # none today (a read goes one way or the other), but wire order holds regardless
        self._put(EventBatch(self.connection_number, seqs, frames))

    def _flush(self) -> None:
        """End of a socket read: hand its live events sorted out one by one on as one batch."""
        if self._frames:
            batch = EventBatch(self.connection_number, self._seqs, self._frames)
            self._seqs, self._frames = [], []
            self._put(batch)

    def _put(self, batch: EventBatch) -> None:
        self._queued += len(batch.frames)
        self._events.put_nowait(batch)

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            logins_before = self.stats["logins"]
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except AmiAuthError as exc:
                self.last_error = exc
                self.stats["login_failures"] += 1
            except Exception as exc:
                self.last_error = exc
                self.stats["connect_failures" if self._transport is None else "disconnects"] += 1
                log.warning("ami session ended", ami=self._where, error=f"{exc.__class__.__name__}: {exc}")
            finally:
                await self._drop_transport()
            if self._closing:
                return
            # A good login proves the setup works: the next wait starts from the base again.
            failures = 1 if self.stats["logins"] > logins_before else failures + 1
            delay = self.config.retry.delay_for(failures)
            self.stats["reconnects"] += 1
            log.info("ami reconnecting", ami=self._where, delay_s=round(delay, 2), attempt=failures + 1)
            await asyncio.sleep(delay)

    async def _drop_transport(self) -> None:
        was_ready = self._ready.is_set()
        self._ready.clear()
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()
        if was_ready and self._on_disconnect is not None and not self._closing:
            try:
                await self._on_disconnect(self)
            except Exception:
                log.exception("ami on_disconnect hook failed", ami=self._where)

    async def _session(self) -> None:
        """One connection: connect, login, hook, then keep alive until it dies."""
        cfg = self.config
        self.last_error = None
        transport = await AmiTransport.open(
            cfg.host,
            cfg.port,
            on_event=self._deliver,
            on_events=self._deliver_all,
            on_read=self._flush,
            before_read=self._read_gate,
            next_seq=self._seq.__next__,
            # Headers are split on first use: most live events are only looked at by name.
            parser=FrameParser(lazy_headers=True),
            action_id_prefix=cfg.action_id_prefix,
            connect_timeout=cfg.connect_timeout,
            default_timeout=cfg.action_timeout,
            tls=cfg.tls,
            tls_server_name=cfg.tls_server_name,
        )
        self._transport = transport
        self.connection_number += 1
        self.stats["connects"] += 1
        await self._login(transport)
        self.stats["logins"] += 1
        log.info("ami logged in", ami=self._where, username=cfg.username, banner=transport.banner)
        self._ready.set()
        if self._on_connect is not None:
            await self._on_connect(self)
        await self._keepalive(transport)
        raise AmiConnectionLost(f"connection lost: {transport.close_reason}")

    async def _login(self, transport: AmiTransport) -> None:
        cfg = self.config
        headers: list[tuple[str, str]] = [("Username", cfg.username)]
        if cfg.auth == "md5":
            challenge = await transport.send_action("Challenge", {"AuthType": "MD5"})
            value = challenge.response.get("Challenge")
            if not challenge.ok or not value:
                raise AmiAuthError(f"AMI {self._where} refused the MD5 challenge: {challenge.message}")
            key = hashlib.md5((value + cfg.secret.get_secret_value()).encode()).hexdigest()
            headers += [("AuthType", "MD5"), ("Key", key)]
        else:
            headers.append(("Secret", cfg.secret.get_secret_value()))
        headers.append(("Events", cfg.events))
        result = await transport.send_action("Login", headers)
        if not result.ok:
            message = result.message or "login refused"
            log.error(
                "ami login failed",
                ami=self._where,
                username=cfg.username,
                reason=message,
                failure=self.stats["login_failures"] + 1,
            )
            raise AmiAuthError(f"AMI {self._where} refused login as {cfg.username!r}: {message}")

    async def _keepalive(self, transport: AmiTransport) -> None:
        cfg = self.config
        while not transport.closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(cfg.ping_interval):
                    await transport.closed.wait()
            if transport.closed.is_set():
                return
            try:
                await transport.send_action("Ping", response_timeout=cfg.ping_timeout)
            except AmiTimeout:
                self.stats["ping_timeouts"] += 1
                log.warning(
                    "ami ping unanswered, connection declared dead", ami=self._where, timeout_s=cfg.ping_timeout
                )
                transport.abort("ping timeout")
                await transport.closed.wait()
                return
            except AmiConnectionLost:
                return
