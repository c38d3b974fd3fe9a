"""The SSE fan-out of ``/api/queue-status/stream``: ONE WatchSnapshot per queue filter, shared by
every client with that filter, each message encoded as its SSE frame once.

Without it every client held a watch of its own: the status service sent each change set once per
client, and the gateway parsed it and encoded its JSON once per client, so 500 dashboards cost 500
times one. Now a change set costs one read and one encoding; what remains per client is the write
of its bytes, and a client's writes are joined (every frame that arrived while it waited goes out
in one write), so a slow moment costs fewer writes, not more.

- **Joining.** The first client of a filter starts its feed: the watch's first message (the
  snapshot) is the client's first event, as is every client's that joins before it arrives. A
  client joining a running feed fetches its own snapshot (revision ``R``: GetSnapshot for every
  queue, else a watch of its own that it closes after the snapshot), then takes from the feed's
  recent frames those after ``R``. The feed keeps its
  last :data:`RECENT_FRAMES` frames and knows the revision from which it holds every later one
  (``base``); a snapshot older than that (the feed moved on more than the recent frames while the
  snapshot came) keeps its own watch as its stream (the same events, just not shared).
- **Order.** A client receives the status service's messages for its filter in order: its
  snapshot, then each later ``changes`` (or ``snapshot``, which the service resends after a
  skip-ahead) frame exactly once.
- **Pace.** The feed reads one message per event-loop turn, and waking every client costs a turn
  of N writes: woken per message, the feed's read rate fell to what N writes per turn allow (at
  250 clients ~25 change sets/s against ~350 coming), and the feed fell behind the status service
  for good (the backlog sat in gRPC's buffers, so the service never skipped it ahead). So the feed
  wakes its clients at most every :data:`FLUSH_INTERVAL_S`: the reads in between are cheap, and a
  client's write carries every frame since its last one. That interval is counted from the end of
  the clients' writes, not from the first frame after a wake: counted from the frame, N writes
  longer than the interval (100 clients at 0.3 ms, or one stall of the process) used the whole
  interval up, the next turn woke every client again for a frame or two, and the feed was back to
  one read per N writes, for good.
- **Slow clients.** A client with more than :data:`MAX_PENDING_FRAMES` frames not yet written gets
  an ``error`` event (RESOURCE_EXHAUSTED) and its stream ends; EventSource reconnects and starts
  from a fresh snapshot. Nobody else waits for it.
- **End.** The feed's watch failing or ending ends every client's stream of that filter (failing:
  with an ``error`` event, as a watch of their own would), and the next client starts a new feed.
  The last client leaving closes the watch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable

import grpc
import grpc.aio
from sse_starlette import ServerSentEvent
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from gateway.errors import error_body
from gateway.responses import dumps
from gateway.status_json import change_set_json, snapshot_json
from runtime.errors import Unavailable
from runtime.grpc_client import read_message
from runtime.logging import get_logger

__all__ = ["FLUSH_INTERVAL_S", "MAX_PENDING_FRAMES", "RECENT_FRAMES", "StatusFanout", "encode_event"]

log = get_logger("gateway.status_fanout")

RECENT_FRAMES = 1024
"""Frames a feed keeps for clients joining it (their snapshot may be a few revisions old)."""
SNAPSHOT_TIMEOUT_S = 10.0
"""How long a client joining a running feed waits for its snapshot."""
FLUSH_INTERVAL_S = 0.02
"""How often at most a feed wakes its clients to write the frames it read meanwhile."""
MAX_PENDING_FRAMES = 4096
"""Frames a client may have waiting for its connection before its stream is ended."""

Stub = Callable[[], "status_pb2_grpc.StatusServiceAsyncStub"]


def encode_event(message: status_pb2.WatchSnapshotResponse) -> tuple[int, bytes] | None:
    """A WatchSnapshot message as (revision, SSE frame); None for an event the stream does not carry."""
    kind = message.WhichOneof("event")
    if kind == "snapshot":
        snapshot = message.snapshot
        body, event, revision = snapshot_json(snapshot), "snapshot", snapshot.revision
    elif kind == "changes":
        changes = message.changes
        body, event, revision = change_set_json(changes), "changes", changes.revision
    else:
        return None
    return revision, ServerSentEvent(dumps(body), event=event, id=str(revision)).encode()


def error_frame(code: grpc.StatusCode, message: str) -> bytes:
    return ServerSentEvent(dumps(error_body(code, message)), event="error").encode()


class _Client:
    """One client's frames not yet written, and whether its stream is over."""

    __slots__ = ("ended", "on_overflow", "pending", "ready")

    def __init__(self, on_overflow: Callable[[_Client], None], first: Iterable[bytes] = ()) -> None:
        self.pending: list[bytes] = list(first)
        self.ready = asyncio.Event()
        self.ended = False
        self.on_overflow = on_overflow
        if self.pending:
            self.ready.set()

    def push(self, frame: bytes, *, wake: bool = True) -> None:
        """Add a frame; ``wake=False`` leaves waking the writer to :meth:`wake` (the feed's pace)."""
        if self.ended:
            return
        if len(self.pending) >= MAX_PENDING_FRAMES:
            self.end(error_frame(grpc.StatusCode.RESOURCE_EXHAUSTED, "this stream fell behind; reconnect"))
            self.on_overflow(self)
            return
        self.pending.append(frame)
        if wake:
            self.ready.set()

    def wake(self) -> None:
        if self.pending:
            self.ready.set()

    def end(self, last: bytes | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        if last is not None:
            self.pending = [last]  # what was not written yet is superseded: the stream ends here
        self.ready.set()

    async def frames(self) -> AsyncIterator[bytes]:
        while True:
            await self.ready.wait()
            self.ready.clear()
            batch, self.pending = self.pending, []
            if batch:
                yield b"".join(batch)
            if self.ended:
                return


class _Feed:
    """One shared watch for one queue filter."""

    def __init__(self, stub: Stub, queues: tuple[str, ...], on_end: Callable[[_Feed], None]) -> None:
        self.queues = queues
        self.clients: set[_Client] = set()
        self.recent: deque[tuple[int, bytes]] = deque(maxlen=RECENT_FRAMES)
        self.base: int | None = None
        """Every frame after this revision is in ``recent`` or still to come (None: no snapshot yet)."""
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started.add_done_callback(_retrieved)  # a failure nobody waited for is not an error
        self._stub = stub
        self._on_end = on_end
        self._flush: asyncio.TimerHandle | None = None
        self._unannounced = False
        """Frames were published since the clients were last woken."""
        self._writing = False
        """The clients just woken write in the loop's next turn; the interval starts after that."""
        self._ended = False
        self._task = asyncio.create_task(self._run(), name=f"status-fanout {','.join(queues) or '*'}")

    @property
    def live(self) -> bool:
        return self.base is not None and not self._task.done()

    async def _run(self) -> None:
        call = self._stub().WatchSnapshot(status_pb2.WatchSnapshotRequest(queue_names=list(self.queues)))
        last: bytes | None = None
        try:
            while (message := await read_message(call)) is not None:
                self._publish(message)
        except grpc.aio.AioRpcError as error:
            last = error_frame(error.code(), error.details() or error.code().name)
            if not self.started.done():
                self.started.set_exception(error)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a feed must end its clients, whatever went wrong
            log.exception("status fan-out failed", error=repr(error))
            last = error_frame(grpc.StatusCode.INTERNAL, "the status stream failed")
            if not self.started.done():
                self.started.set_exception(error)
        finally:
            call.cancel()
            self._ended = True
            if self._flush is not None:
                self._flush.cancel()
            self._on_end(self)
            if not self.started.done():
                self.started.set_exception(Unavailable("status watch ended before its snapshot"))
            for client in self.clients:
                client.end(last)
            self.clients.clear()

    def _publish(self, message: status_pb2.WatchSnapshotResponse) -> None:
        encoded = encode_event(message)
        if encoded is None:
            return
        revision, frame = encoded
        if self.base is None:
            self.base = revision
        elif len(self.recent) == RECENT_FRAMES:
            self.base = max(self.base, self.recent[0][0])
        self.recent.append(encoded)
        first = not self.started.done()
        for client in tuple(self.clients):  # a client falling behind leaves meanwhile
            client.push(frame, wake=first)  # the snapshot at once; later frames at the feed's pace
        if first:
            self.started.set_result(None)
        else:
            self._unannounced = True
            self._schedule_wake()

    def _schedule_wake(self) -> None:
        if self._flush is None and self._unannounced and not self._writing and not self._ended:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._wake)

    def _wake(self) -> None:
        self._flush = None
        self._unannounced = False
        for client in self.clients:
            client.wake()
        # Each woken client's task was just scheduled; a callback scheduled now runs after them
        # (the loop runs callbacks in the order they were scheduled), once they have written.
        self._writing = True
        asyncio.get_running_loop().call_soon(self._written)

    def _written(self) -> None:
        self._writing = False
        self._schedule_wake()

    def frames_after(self, revision: int) -> list[bytes] | None:
        """The frames after ``revision``, or None when the feed no longer holds all of them."""
        if self.base is None or revision < self.base:
            return None
        return [frame for r, frame in self.recent if r > revision]

    def leave(self, client: _Client) -> None:
        self.clients.discard(client)
        if not self.clients:
            self._on_end(self)  # a client arriving now starts a new feed
            self._task.cancel()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class StatusFanout:
    """The feeds of one gateway, by queue filter."""

    def __init__(self, stub: Stub) -> None:
        self._stub = stub
        self._feeds: dict[tuple[str, ...], _Feed] = {}

    def feeds(self) -> int:
        return len(self._feeds)

    async def subscribe(self, queues: Iterable[str]) -> AsyncIterator[bytes]:
        """The SSE frames of one client (a snapshot first). Raises what the status service's
        watch raised (an AioRpcError) when its snapshot cannot be had: nothing is sent yet."""
        key = tuple(sorted(set(queues)))
        feed = self._feeds.get(key)
        if feed is None or (not feed.live and feed.started.done()):
            feed = self._feeds[key] = _Feed(self._stub, key, self._ended)
        if not feed.live:  # starting: its first message is this client's snapshot too
            client = _Client(feed.leave)
            feed.clients.add(client)
            try:
                await asyncio.shield(feed.started)
            except BaseException:
                feed.leave(client)
                raise
            return self._serve(feed, client)
        return await self._join(feed, key)

    async def _join(self, feed: _Feed, key: tuple[str, ...]) -> AsyncIterator[bytes]:
        if not key:  # every queue: one GetSnapshot, no stream to open and close
            whole = await self._stub().GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=SNAPSHOT_TIMEOUT_S)
            fetched = encode_event(status_pb2.WatchSnapshotResponse(snapshot=whole))
            assert fetched is not None
            after_it = feed.frames_after(fetched[0]) if feed.live else None
            if after_it is not None:
                return self._serve(feed, self._joined(feed, [fetched[1], *after_it]))
        call = self._stub().WatchSnapshot(status_pb2.WatchSnapshotRequest(queue_names=list(key)))
        try:
            first = await read_message(call)
        except BaseException:
            call.cancel()
            raise
        encoded = encode_event(first) if first is not None else None
        if encoded is None:
            call.cancel()
            raise Unavailable("status watch ended before its snapshot")
        revision, snapshot = encoded
        later = feed.frames_after(revision) if feed.live else None
        if later is None:  # the feed cannot continue this snapshot: the client keeps its own watch
            return _own_watch(call, snapshot)
        call.cancel()
        return self._serve(feed, self._joined(feed, [snapshot, *later]))

    @staticmethod
    def _joined(feed: _Feed, first: list[bytes]) -> _Client:
        client = _Client(feed.leave, first)
        feed.clients.add(client)
        return client

    async def _serve(self, feed: _Feed, client: _Client) -> AsyncIterator[bytes]:
        try:
            async for chunk in client.frames():
                yield chunk
        finally:
            feed.leave(client)

    def _ended(self, feed: _Feed) -> None:
        if self._feeds.get(feed.queues) is feed:
            del self._feeds[feed.queues]

    async def stop(self) -> None:
        for feed in list(self._feeds.values()):
            await feed.stop()


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def _own_watch(call: grpc.aio.UnaryStreamCall, snapshot: bytes) -> AsyncIterator[bytes]:
    """A client's own watch as its stream (its snapshot already read)."""
    try:
        yield snapshot
        while (message := await read_message(call)) is not None:
            encoded = encode_event(message)
            if encoded is not None:
                yield encoded[1]
    except grpc.aio.AioRpcError as error:
        yield error_frame(error.code(), error.details() or error.code().name)
    finally:
        call.cancel()
