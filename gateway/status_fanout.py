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
  skip-ahead) frame exactly once. Each client keeps the revision of the last frame it was given,
  and a round gives it only later ones: a joining client's snapshot may be newer than what the
  feed has read yet (the feed reads a few milliseconds behind), and the changes it already holds
  are not sent to it again.
- **Writes.** A client's first frames (its snapshot) go through the ASGI send like any response
  body. From then on, on uvicorn (:meth:`gateway.http_server.Connection.streaming_wire`), the
  feed writes each round of frames straight to every client's connection: the frames are joined
  and framed as one body chunk once, and a client costs one ``transport.write`` of those bytes. The
  way before (each client's task woken, its frames passed through the middleware's send chain,
  per client per round) cost the loop a task step and some eight awaits per client per round:
  about 0.1 ms, so 50 ms for a round to 500 clients, while the feed could read nothing.
- **Pace.** Frames read while a round of writes was under way go out together in the next round,
  which starts once the loop has had :data:`WRITE_SHARE` of its time back: a round that took T of
  the loop's CPU time is followed by at least T·(1/share − 1) for the feed's reads and everything
  else. A round to one client takes microseconds, so its frames go out as they are read; a round
  to 500 takes a few milliseconds, and its frames wait at most about three times that. (A fixed
  flush interval of 20 ms used to pace every feed: it was most of one client's latency, 12 of its
  14 ms median.) T is the thread's CPU time, not the wall clock's: on a busy machine the process
  is often descheduled amid a round (at 500 clients in the bench a round's CPU time was 1.6 ms at
  the median, 2.9 ms at p99, its wall time 2.5 and 7.0 ms), and the wait after it, twice the
  wall time, was the largest part of the slowest frames' latency (15 of 27 ms). Clients that are
  not on a connection of ours (another server, tests) are woken per round and write from their
  own tasks; the round is timed up to the end of their writes.
- **Slow clients.** A client whose connection holds more than
  :data:`~gateway.fanout_client.MAX_BUFFERED_BYTES` not yet sent (beyond the kernel's buffers),
  or, written from its own task, has more than :data:`~gateway.fanout_client.MAX_PENDING_FRAMES`
  frames waiting, gets an ``error`` event (RESOURCE_EXHAUSTED) after what was written to it, and
  its stream ends; EventSource reconnects and starts from a fresh snapshot. Nobody else waits for it.
- **End.** The feed's watch failing or ending ends every client's stream of that filter, after the
  frames read before it (failing: then an ``error`` event, as a watch of their own would send),
  and the next client starts a new feed. The last client leaving closes the watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable

import grpc
import grpc.aio
from sse_starlette import ServerSentEvent
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from gateway.fanout_client import FanoutClient, error_frame
from gateway.http_server import Wire, body_chunk
from gateway.responses import dumps
from gateway.status_json import change_set_json, snapshot_json
from runtime.errors import Unavailable
from runtime.grpc_client import read_message
from runtime.logging import get_logger

__all__ = ["RECENT_FRAMES", "WRITE_SHARE", "StatusFanout", "WireSource", "encode_event"]

log = get_logger("gateway.status_fanout")

RECENT_FRAMES = 1024
"""Frames a feed keeps for clients joining it (their snapshot may be a few revisions old)."""
SNAPSHOT_TIMEOUT_S = 10.0
"""How long a client joining a running feed waits for its snapshot."""
WRITE_SHARE = 1 / 3
"""The share of the event loop a feed's rounds of writes may take while frames come faster than
they can be written (see Pace)."""

Stub = Callable[[], "status_pb2_grpc.StatusServiceAsyncStub"]
WireSource = Callable[[], Wire | None]
"""A client's connection, once its response is under way (None: not one the feed can write to)."""


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


class _Feed:
    """One shared watch for one queue filter."""

    def __init__(self, stub: Stub, queues: tuple[str, ...], on_end: Callable[[_Feed], None]) -> None:
        self.queues = queues
        self.clients: set[FanoutClient] = set()
        self.recent: deque[tuple[int, bytes]] = deque(maxlen=RECENT_FRAMES)
        self.base: int | None = None
        """Every frame after this revision is in ``recent`` or still to come (None: no snapshot yet)."""
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started.add_done_callback(_retrieved)  # a failure nobody waited for is not an error
        self._stub = stub
        self._on_end = on_end
        self._unsent: list[tuple[int, bytes]] = []
        """Frames read since the last round of writes."""
        self._round: asyncio.Handle | None = None
        self._writing_since: float | None = None
        """thread_time() at the start of the round under way (its clients' tasks still to write)."""
        self._next_round_at = 0.0
        """loop.time() before which no round starts (see Pace)."""
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
            if self._round is not None:
                self._round.cancel()
            if self._unsent:  # what was read goes out before the end
                self._send(self._unsent)
                self._unsent = []
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
        if self.started.done():
            self._unsent.append(encoded)
            self._schedule()
            return
        for client in tuple(self.clients):  # the snapshot: every starting client's first frame, at once
            client.seen = revision
            client.push(frame)
        self.started.set_result(None)

    def _schedule(self) -> None:
        if self._round is not None or self._writing_since is not None or self._ended:
            return
        loop = asyncio.get_running_loop()
        delay = self._next_round_at - loop.time()
        # call_soon, not at once: frames read in this turn of the loop go out together.
        self._round = loop.call_soon(self._write) if delay <= 0 else loop.call_later(delay, self._write)

    def _write(self) -> None:
        self._round = None
        unsent, self._unsent = self._unsent, []
        if not unsent:
            return
        self._writing_since = time.thread_time()
        self._send(unsent)
        # Clients written from their own tasks were just woken; a callback scheduled now runs
        # after their steps (the loop runs its ready callbacks in order), when they have written.
        asyncio.get_running_loop().call_soon(self._written)

    def _written(self) -> None:
        assert self._writing_since is not None
        spent = time.thread_time() - self._writing_since
        self._writing_since = None
        self._next_round_at = asyncio.get_running_loop().time() + spent * (1 / WRITE_SHARE - 1)
        if self._unsent:
            self._schedule()

    def _send(self, unsent: list[tuple[int, bytes]]) -> None:
        """One round: ``unsent`` to every client, as one chunk encoded once for all of them."""
        first, last = unsent[0][0], unsent[-1][0]
        frames = [frame for _, frame in unsent]
        chunk = body_chunk(b"".join(frames))
        for client in tuple(self.clients):  # a client falling behind leaves meanwhile
            if client.seen < first:
                client.send(frames, chunk)
            elif client.seen < last:  # it joined with some of these frames after its snapshot
                own = [frame for revision, frame in unsent if revision > client.seen]
                client.send(own, body_chunk(b"".join(own)))
            client.seen = max(client.seen, last)

    def frames_after(self, revision: int) -> list[tuple[int, bytes]] | None:
        """The frames after ``revision``, or None when the feed no longer holds all of them."""
        if self.base is None or revision < self.base:
            return None
        return [(r, frame) for r, frame in self.recent if r > revision]

    def leave(self, client: FanoutClient) -> None:
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

    async def subscribe(self, queues: Iterable[str], wire: WireSource | None = None) -> AsyncIterator[bytes]:
        """The SSE frames of one client (a snapshot first). Raises what the status service's
        watch raised (an AioRpcError) when its snapshot cannot be had: nothing is sent yet.

        ``wire``: the client's connection, to which the feed then writes its frames itself once
        the response is under way. The stream must be consumed as the SSE response does: each
        chunk written before the next one is asked for (later frames would overtake it else)."""
        key = tuple(sorted(set(queues)))
        feed = self._feeds.get(key)
        if feed is None or (not feed.live and feed.started.done()):
            feed = self._feeds[key] = _Feed(self._stub, key, self._ended)
        if not feed.live:  # starting: its first message is this client's snapshot too
            client = FanoutClient(feed.leave)
            feed.clients.add(client)
            try:
                await asyncio.shield(feed.started)
            except BaseException:
                feed.leave(client)
                raise
            return self._serve(feed, client, wire)
        return await self._join(feed, key, wire)

    async def _join(self, feed: _Feed, key: tuple[str, ...], wire: WireSource | None) -> AsyncIterator[bytes]:
        if not key:  # every queue: one GetSnapshot, no stream to open and close
            whole = await self._stub().GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=SNAPSHOT_TIMEOUT_S)
            fetched = encode_event(status_pb2.WatchSnapshotResponse(snapshot=whole))
            assert fetched is not None
            after_it = feed.frames_after(fetched[0]) if feed.live else None
            if after_it is not None:
                return self._serve(feed, self._joined(feed, fetched, after_it), wire)
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
        later = feed.frames_after(encoded[0]) if feed.live else None
        if later is None:  # the feed cannot continue this snapshot: the client keeps its own watch
            return _own_watch(call, encoded[1])
        call.cancel()
        return self._serve(feed, self._joined(feed, encoded, later), wire)

    @staticmethod
    def _joined(feed: _Feed, snapshot: tuple[int, bytes], later: list[tuple[int, bytes]]) -> FanoutClient:
        seen = later[-1][0] if later else snapshot[0]
        client = FanoutClient(feed.leave, [snapshot[1], *(frame for _, frame in later)], seen=seen)
        feed.clients.add(client)
        return client

    async def _serve(self, feed: _Feed, client: FanoutClient, wire: WireSource | None) -> AsyncIterator[bytes]:
        try:
            async for chunk in client.frames():
                yield chunk
                # Resumed once the response has written the chunk: the feed may write the rest.
                if wire is not None and client.wire is None and not client.ended:
                    connection = wire()
                    if connection is not None:
                        client.write_to(connection)
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
