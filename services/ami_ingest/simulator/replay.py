"""Replay server: serves a recorded AMI session to any client that speaks real AMI.

Connection ``n`` of a client gets segment ``n`` of the recording (see
:mod:`~services.ami_ingest.simulator.recording`): the recorded banner, the recorded answer to
its Login (a recorded refusal is sent and the connection closed, as Asterisk does), then the
recorded live events in order. Where the recording answered its own initial ``QueueStatus`` /
``CoreShowChannels``, the stream waits (at most ``sync_timeout``) for the client's request and
answers it with those recorded lists, ActionIDs rewritten to the client's — so live events that
interleaved with the lists keep their recorded place. Later requests get the latest recorded
list at the current position (after the end: the recording's final resync, i.e. the truth).
At the end of a segment that is not the last the connection is closed; connections after the
last segment get its login and final lists but no events. ``finished`` is set once the last
segment has been streamed completely.

``repeat`` streams each segment's live events that many times in a row on its connection (the
resync lists only the first time): a longer load from a short capture, for benchmarks. A
capture whose calls all end, like the busy hour's, leaves the same final state after every pass.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections import deque

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.simulator.protocol import (
    AmiTcpServer,
    Credentials,
    ServerSession,
    encode_frame,
    permission_denied,
    reply,
    with_action_id,
)
from services.ami_ingest.simulator.recording import (
    RESYNC_KINDS,
    LiveStep,
    RecordedList,
    Recording,
    Segment,
    SyncGate,
)

log = logging.getLogger(__name__)
_FLUSH_BYTES = 1 << 18
_QUEUE_SCOPED = frozenset({"QueueParams", "QueueMember", "QueueEntry"})


def render_list(answer: RecordedList, request: Frame) -> bytes:
    """A recorded list as the answer to ``request`` (its ActionID; QueueStatus filters applied)."""
    action_id = request.action_id
    queue = request.get("Queue")
    member = request.get("Member")
    items = [
        item
        for item in answer.items
        if not (queue and item.event in _QUEUE_SCOPED and item.get("Queue") != queue)
        and not (member and item.event == "QueueMember" and item.get("Location") != member)
        and not (member and item.event == "QueueEntry")
    ]
    parts = [encode_frame(with_action_id(answer.response.headers, action_id))]
    parts.extend(encode_frame(with_action_id(item.headers, action_id)) for item in items)
    if answer.complete is not None:
        complete = [
            (k, str(len(items)) if k in ("ListItems", "Items") else v)
            for k, v in with_action_id(answer.complete.headers, action_id)
        ]
        parts.append(encode_frame(complete))
    return b"".join(parts)


class ReplayServer(AmiTcpServer):
    """``async with ReplayServer(recording) as server:`` then connect to ``server.port``."""

    def __init__(
        self,
        recording: Recording,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float | None = None,
        fallback_rate: float = 100.0,
        sync_timeout: float = 5.0,
        credentials: Credentials | None = None,
        repeat: int = 1,
    ) -> None:
        if not recording.segments:
            raise ValueError("the recording holds no AMI connection")
        if repeat < 1:
            raise ValueError(f"repeat must be at least 1 (got {repeat})")
        self.recording = recording
        self.host = host
        self.port = port
        self.speed = speed
        self.fallback_rate = fallback_rate
        self.sync_timeout = sync_timeout
        self.credentials = credentials
        self.repeat = repeat
        self.finished = asyncio.Event()
        self.segments_done = 0
        self.stats: collections.Counter[str] = collections.Counter()
        self._next_segment = 0
        self._sessions: set[_ReplaySession] = set()

    async def _close_sessions(self) -> None:
        for session in list(self._sessions):
            await session.stop()

    def _segment_done(self, index: int) -> None:
        self.segments_done += 1
        if index == len(self.recording.segments) - 1:
            self.finished.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        index = self._next_segment
        live = index < len(self.recording.segments)
        if live:
            self._next_segment += 1
        else:
            index = len(self.recording.segments) - 1
        segment = self.recording.segments[index]
        server_session = ServerSession(reader, writer, banner=segment.banner, challenge=segment.challenge)
        session = _ReplaySession(self, server_session, segment, index, live=live)
        self._sessions.add(session)
        try:
            await server_session.serve(session)
        finally:
            await session.stop()
            self._sessions.discard(session)


class _ReplaySession:
    """The replay of one segment over one client connection (an ``ActionHandler``)."""

    def __init__(self, server: ReplayServer, session: ServerSession, segment: Segment, index: int, *, live: bool):
        self.server = server
        self.session = session
        self.segment = segment
        self.index = index
        self.live = live
        self.cursor = 0 if live else len(segment.steps)
        self.gates_ahead: collections.Counter[str] = collections.Counter(
            step.answer.kind for step in segment.steps if isinstance(step, SyncGate) and live
        )
        self.requests: dict[str, deque[Frame]] = collections.defaultdict(deque)
        self.request_arrived = asyncio.Event()
        self.streamer: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        if self.streamer is not None:
            self.streamer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.streamer
        await self.session.close()

    async def on_login(self, session: ServerSession, action: Frame) -> bool:
        recorded = self.segment.login_response
        creds = self.server.credentials
        refused = self.segment.login_failed or (creds is not None and not creds.accepts(action, session.challenge))
        if refused:
            self.server.stats["logins_refused"] += 1
            if recorded is not None and self.segment.login_failed:
                await session.send(with_action_id(recorded.headers, action.action_id))
            else:
                await session.send(reply(action, "Error", ("Message", "Authentication failed")))
            if self.live:
                self.server._segment_done(self.index)
            await session.close()
            return False
        if recorded is not None:
            await session.send(with_action_id(recorded.headers, action.action_id))
        else:
            await session.send(reply(action, "Success", ("Message", "Authentication accepted")))
        self.server.stats["logins"] += 1
        if self.live:
            self.streamer = asyncio.create_task(self._stream(), name=f"replay-segment-{self.index}")
        return True

    async def on_action(self, session: ServerSession, action: Frame, name: str) -> None:
        if name in RESYNC_KINDS and self.gates_ahead[name] > 0:
            self.requests[name].append(action)
            self.request_arrived.set()
            return
        answer = self.segment.latest_list(name, self.cursor)
        if answer is not None:
            await session.send_raw(render_list(answer, action))
        else:
            await session.send(permission_denied(action))

    async def _stream(self) -> None:
        session = self.session
        buffer: list[bytes] = []
        size = 0
        pacer = _Pacer(self.server.speed, self.server.fallback_rate)
        steps = self.segment.steps
        gates: list[SyncGate] = []
        for position, step in enumerate(steps):
            self.cursor = position
            if isinstance(step, SyncGate):
                gates.append(step)
                if position + 1 < len(steps) and isinstance(steps[position + 1], SyncGate):
                    continue  # adjacent gates are answered together, in the client's order
                if buffer:
                    await session.send_raw(b"".join(buffer))
                    buffer, size = [], 0
                await self._answer_gates(gates)
                gates = []
                continue
            if isinstance(step, LiveStep):
                if not session.events_on:
                    continue
                if pacer.active:
                    await pacer.wait(step.timestamp)
                    await session.send_raw(step.data)
                    continue
                buffer.append(step.data)
                size += len(step.data)
                if size >= _FLUSH_BYTES:
                    await session.send_raw(b"".join(buffer))
                    buffer, size = [], 0
        if buffer:
            await session.send_raw(b"".join(buffer))
        self.cursor = len(self.segment.steps)
        if self.server.repeat > 1 and session.events_on:
            await self._repeat_live(pacer)
        last = self.index == len(self.server.recording.segments) - 1
        if self.segment.tail:
            await session.send_raw(self.segment.tail)
        self.server._segment_done(self.index)
        log.info("replay: segment %d streamed (%d live events)", self.index, self.segment.live_count)
        if not last:
            await session.close()

    async def _repeat_live(self, pacer: _Pacer) -> None:
        """The segment's live events again, ``repeat - 1`` more times (later list requests get
        the final lists: the cursor stays at the end)."""
        live = [step for step in self.segment.steps if isinstance(step, LiveStep)]
        if not live:
            return
        if pacer.active:
            for _ in range(self.server.repeat - 1):
                pacer.restart()
                for step in live:
                    await pacer.wait(step.timestamp)
                    await self.session.send_raw(step.data)
            return
        chunks: list[bytes] = []
        buffer: list[bytes] = []
        size = 0
        for step in live:
            buffer.append(step.data)
            size += len(step.data)
            if size >= _FLUSH_BYTES:
                chunks.append(b"".join(buffer))
                buffer, size = [], 0
        if buffer:
            chunks.append(b"".join(buffer))
        for _ in range(self.server.repeat - 1):
            for chunk in chunks:
                await self.session.send_raw(chunk)

    async def _answer_gates(self, gates: list[SyncGate]) -> None:
        """Answer the client's resync requests with these adjacent recorded lists, in its order."""
        waiting = {gate.answer.kind: gate.answer for gate in gates}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.server.sync_timeout):
                while waiting:
                    kind = next((k for k in waiting if self.requests[k]), None)
                    if kind is None:
                        self.request_arrived.clear()
                        await self.request_arrived.wait()
                        continue
                    answer = waiting.pop(kind)
                    self.gates_ahead[kind] -= 1
                    await self._send_answers(kind, answer)
        for kind in waiting:
            self.gates_ahead[kind] -= 1
            self.server.stats["sync_gates_skipped"] += 1

    async def _send_answers(self, kind: str, answer: RecordedList) -> None:
        queue = self.requests[kind]
        await self.session.send_raw(render_list(answer, queue.popleft()))
        while queue and self.gates_ahead[kind] == 0:
            # Requests beyond the recorded ones get this same list (it is the latest).
            await self.session.send_raw(render_list(answer, queue.popleft()))


class _Pacer:
    """Keeps recorded spacing divided by ``speed`` (Timestamp headers, else ``fallback_rate``/s)."""

    def __init__(self, speed: float | None, fallback_rate: float) -> None:
        self.active = bool(speed)
        self._speed = speed or 1.0
        self._step = 1.0 / max(fallback_rate, 1e-6)
        self._start_wall = 0.0
        self._start_rec: float | None = None
        self._rec = 0.0

    def restart(self) -> None:
        """Start the spacing over (the next step goes out at once): a repeated pass."""
        self._start_rec = None

    async def wait(self, timestamp: float | None) -> None:
        now = time.monotonic()
        if self._start_rec is None:
            self._start_wall = now
            self._start_rec = timestamp if timestamp is not None else 0.0
            self._rec = self._start_rec
            return
        self._rec = timestamp if timestamp is not None else self._rec + self._step
        due = self._start_wall + (self._rec - self._start_rec) / self._speed
        if due > now:
            await asyncio.sleep(due - now)
