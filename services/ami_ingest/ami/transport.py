"""One TCP connection to an AMI server: banner, framing, ActionID correlation, event lists.

The reader task parses every byte the server sends and sorts each frame into exactly one of:

* the answer to one of our pending actions (``Response:`` with our ActionID),
* an item of one of our pending event-list actions (an event carrying the ActionID of a list
  action whose ``EventList: start`` response already arrived), up to the ``…Complete`` event,
* a live event, handed to ``on_event`` in wire order.

While no action waits for its answer, a read whose frames are all events is handed to
``on_events`` (if given) in one call, with their sequence numbers: the same events, in the same
order, without running Python code per frame.

Before each read the reader awaits ``before_read`` (if given): a consumer that applies events
more slowly than they arrive can hold the reader back, so a burst waits in the socket (and the
server's send buffer) rather than in memory.

After the frames of one socket read are sorted, ``on_read`` (if given) is called: a consumer can
collect live events in ``on_event`` and hand them on as one batch per read. Nothing awaits
between a list's completion and that call, so an action's answer never completes before the
live events read with (and before) its last frame are handed on.

Every frame gets a sequence number from the shared ``next_seq`` counter, so a consumer can
tell which live events arrived while a list was streaming (between the response's and the
completion's numbers). An ActionID on an event that is not a list item of ours
(OriginateResponse, UserEvent of another session) does not make it an answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat, starmap
from operator import attrgetter

from runtime.logging import get_logger
from services.ami_ingest.ami.chunks import ChunkReader, open_chunked
from services.ami_ingest.ami.errors import (
    AmiActionError,
    AmiConnectionLost,
    AmiProtocolError,
    AmiTimeout,
)
from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser, encode_action

log = get_logger(__name__)

ActionHeaders = Iterable[tuple[str, str]] | Mapping[str, str]
_OK_RESPONSES = frozenset({"success", "follows", "goodbye"})
READ_CHUNK = 1 << 18
"""Most bytes one socket read takes (unless one chunk the event loop received is larger), and the
reader's buffer limit (see :mod:`~services.ami_ingest.ami.chunks`): under a burst every read is
one parse, one hop to the ingest loop and, usually, one batch to the status service; 256 KiB
reads send a third as many batches as 64 KiB ones (a quiet feed reads what came, as before)."""
_EVENT_NAME = attrgetter("event")


def _last(numbers: Iterable[int], default: int) -> int:
    tail = deque(numbers, maxlen=1)
    return tail[0] if tail else default


EventsHandler = Callable[[range, list[Frame]], None]
"""Receives live events in bulk: their (consecutive) sequence numbers and frames, in wire order;
the frames' list is the handler's to keep."""
ReadGate = Callable[[], Awaitable[None]]
"""Awaited before each socket read; returns when the consumer has room for more."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The whole answer to one action: its response and, for event-list actions, the items."""

    action: str
    action_id: str
    response: Frame
    response_seq: int
    items: tuple[Frame, ...] = ()
    item_seqs: tuple[int, ...] = ()
    complete: Frame | None = None
    end_seq: int = 0
    """Sequence number of the ``…Complete`` event (of the response for a single answer)."""

    @property
    def ok(self) -> bool:
        return (self.response.response or "").lower() in _OK_RESPONSES

    @property
    def message(self) -> str:
        return self.response.get("Message") or ""

    def raise_for_error(self) -> ActionResult:
        if not self.ok:
            raise AmiActionError(self.action, self.message or (self.response.response or "no response"))
        return self


def is_list_start(response: Frame) -> bool:
    """Whether a response announces an event list (Asterisk 13+: ``EventList: start``)."""
    if (response.get("EventList") or "").lower() == "start":
        return True
    message = (response.get("Message") or "").lower()
    return message.endswith("will follow") and (response.response or "").lower() == "success"


def is_list_end(event: Frame) -> bool:
    marker = (event.get("EventList") or "").lower()
    return marker in ("complete", "cancelled") or (event.event or "").endswith("Complete")


@dataclass(slots=True)
class _Pending:
    action: str
    future: asyncio.Future[ActionResult]
    response: Frame | None = None
    response_seq: int = 0
    items: list[Frame] = field(default_factory=list)
    item_seqs: list[int] = field(default_factory=list)


class AmiTransport:
    """A connected AMI socket; create it with :meth:`open`."""

    def __init__(
        self,
        reader: ChunkReader,
        writer: asyncio.StreamWriter,
        *,
        on_event: Callable[[int, Frame], None],
        next_seq: Callable[[], int],
        action_id_prefix: str,
        parser: FrameParser | None = None,
        default_timeout: float = 10.0,
        on_read: Callable[[], None] | None = None,
        on_events: EventsHandler | None = None,
        before_read: ReadGate | None = None,
    ) -> None:
        self._reader = reader
        self._before_read = before_read
        self._writer = writer
        self._on_event = on_event
        self._on_read = on_read
        self._on_events = on_events
        self._next_seq = next_seq
        self._prefix = action_id_prefix
        self._counter = 0
        self._pending: dict[str, _Pending] = {}
        self._default_timeout = default_timeout
        self.parser = parser or FrameParser()
        self.banner_received = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.stats: collections.Counter[str] = collections.Counter()
        self._reader_task = asyncio.create_task(self._read_loop(), name="ami-transport-reader")

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        on_event: Callable[[int, Frame], None],
        next_seq: Callable[[], int],
        action_id_prefix: str,
        connect_timeout: float = 5.0,
        default_timeout: float = 10.0,
        parser: FrameParser | None = None,
        on_read: Callable[[], None] | None = None,
        on_events: EventsHandler | None = None,
        before_read: ReadGate | None = None,
        tls: ssl.SSLContext | None = None,
        tls_server_name: str | None = None,
    ) -> AmiTransport:
        """Connect (over TLS when ``tls`` is given) and wait for the ``Asterisk Call Manager/x.y.z`` banner."""
        async with asyncio.timeout(connect_timeout):
            reader, writer = await open_chunked(
                host, port, limit=READ_CHUNK, tls=tls, server_hostname=tls_server_name or host
            )
        transport = cls(
            reader,
            writer,
            on_event=on_event,
            next_seq=next_seq,
            action_id_prefix=action_id_prefix,
            parser=parser,
            default_timeout=default_timeout,
            on_read=on_read,
            on_events=on_events,
            before_read=before_read,
        )
        try:
            async with asyncio.timeout(connect_timeout):
                closed = asyncio.ensure_future(transport.closed.wait())
                banner = asyncio.ensure_future(transport.banner_received.wait())
                try:
                    await asyncio.wait({closed, banner}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closed.cancel()
                    banner.cancel()
        except TimeoutError:
            await transport.close()
            raise AmiProtocolError(f"no AMI banner from {host}:{port} within {connect_timeout}s") from None
        if not transport.banner_received.is_set():
            await transport.close()
            raise AmiConnectionLost(f"{host}:{port} closed before sending the AMI banner")
        return transport

    @property
    def banner(self) -> str | None:
        return self.parser.banner

    def new_action_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    async def send_action(
        self, action: str, headers: ActionHeaders = (), *, response_timeout: float | None = None
    ) -> ActionResult:
        """Send one action and wait for its full answer (response, plus the list if any).

        ``Response: Error`` is returned, not raised (see :meth:`ActionResult.raise_for_error`).
        """
        if self.closed.is_set():
            raise AmiConnectionLost(f"connection closed ({self.close_reason})")
        items = headers.items() if isinstance(headers, Mapping) else headers
        clean = [(k, v) for k, v in items if k.lower() != "actionid"]
        action_id = self.new_action_id()
        payload = encode_action(action, [("ActionID", action_id), *clean])
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(action, future)
        try:
            self._writer.write(payload)
            await self._writer.drain()
            wait = self._default_timeout if response_timeout is None else response_timeout
            async with asyncio.timeout(wait):
                return await asyncio.shield(future)
        except TimeoutError:
            self.stats["action_timeouts"] += 1
            raise AmiTimeout(f"no complete answer to {action} within {wait}s") from None
        except (ConnectionError, OSError) as exc:
            raise AmiConnectionLost(f"write failed: {exc.__class__.__name__}") from exc
        finally:
            self._pending.pop(action_id, None)
            if not future.done():
                future.cancel()

    async def close(self, reason: str = "closed by client") -> None:
        if not self.closed.is_set():
            self.close_reason = reason
        if not self._writer.is_closing():
            # Only the first closer waits: a second waiter would share (and see cancelled) one future.
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task
        self._mark_closed(reason)

    def abort(self, reason: str) -> None:
        """Declare the connection dead now (missing Pong); the reader notices the close."""
        self.close_reason = reason
        self._writer.transport.abort()

    async def _read_loop(self) -> None:
        reason = "connection closed by server"
        dispatch = self._dispatch
        on_read = self._on_read
        before_read = self._before_read
        on_events = self._on_events
        try:
            while True:
                if before_read is not None:
                    await before_read()
                data = await self._reader.read()
                if not data:
                    break
                frames = self.parser.feed(data)
                if on_events is not None and frames and not self._pending and None not in map(_EVENT_NAME, frames):
                    on_events(self._number(len(frames)), frames)
                else:
                    for frame in frames:
                        dispatch(frame)
                if on_read is not None:
                    on_read()
                if self.parser.banner is not None and not self.banner_received.is_set():
                    self.banner_received.set()
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc.__class__.__name__}"
        finally:
            if on_read is not None:
                on_read()
            self.parser.finish()
            self._mark_closed(self.close_reason or reason)

    def _number(self, count: int) -> range:
        """The next ``count`` sequence numbers, consecutive: nothing else takes one meanwhile."""
        first = self._next_seq()
        # Each number is still drawn from the shared counter (C calls, no list); only the last is kept.
        last = _last(starmap(self._next_seq, repeat((), count - 1)), first)
        return range(first, last + 1)

    def _mark_closed(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = self.close_reason or reason
        self.closed.set()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(AmiConnectionLost(self.close_reason))
                # Retrieved here so an unawaited failure does not warn at garbage collection.
                pending.future.exception()

    def _dispatch(self, frame: Frame) -> None:
        seq = self._next_seq()
        # The common case is a live event with nothing pending: no header but Event is read.
        is_event = frame.event is not None
        if is_event and not self._pending:
            self._on_event(seq, frame)
            return
        action_id = frame.action_id
        if not is_event and frame.response is not None:
            pending = self._pending.get(action_id) if action_id is not None else None
            if pending is None or pending.response is not None:
                self.stats["unmatched_responses"] += 1
                log.debug("ami response with an unknown ActionID ignored", action_id=action_id)
                return
            pending.response = frame
            pending.response_seq = seq
            if not is_list_start(frame):
                self._resolve(action_id or "", pending, None, seq)
            return
        if action_id is not None:
            pending = self._pending.get(action_id)
            if pending is not None and pending.response is not None:
                if is_list_end(frame):
                    self._resolve(action_id, pending, frame, seq)
                else:
                    pending.items.append(frame)
                    pending.item_seqs.append(seq)
                return
        self._on_event(seq, frame)

    def _resolve(self, action_id: str, pending: _Pending, complete: Frame | None, seq: int) -> None:
        # Forget it now: a later event with this ActionID (OriginateResponse) is live, not an item.
        self._pending.pop(action_id, None)
        if pending.future.done() or pending.response is None:
            return
        pending.future.set_result(
            ActionResult(
                action=pending.action,
                action_id=action_id,
                response=pending.response,
                response_seq=pending.response_seq,
                items=tuple(pending.items),
                item_seqs=tuple(pending.item_seqs),
                complete=complete,
                end_seq=seq,
            )
        )
