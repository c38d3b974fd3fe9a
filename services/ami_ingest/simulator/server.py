"""The call-center simulator as an AMI server: real banner, Login (plain or MD5), Events, Ping,
and QueueStatus / CoreShowChannels answered from the live :class:`CallCenter` model.

Model snapshots and the events of each tick are written to every session without yielding in
between, so each client sees its list answers exactly where they belong in the event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.simulator.callcenter import CallCenter
from services.ami_ingest.simulator.protocol import AmiTcpServer, Credentials, ServerSession, encode_frame, reply

log = logging.getLogger(__name__)

_LISTS = {
    "queuestatus": ("Queue status will follow", "QueueStatusComplete"),
    "coreshowchannels": ("Channels will follow", "CoreShowChannelsComplete"),
}


class SimulatorServer(AmiTcpServer):
    """``async with SimulatorServer(CallCenter(seed=1)) as sim:`` then connect to ``sim.port``.

    With ``run_clock`` the model ticks every ``tick_seconds / speed`` of wall time; without it,
    tests drive it with :meth:`advance`.
    """

    def __init__(
        self,
        center: CallCenter,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: Credentials,
        speed: float = 1.0,
        run_clock: bool = True,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.center = center
        self.host = host
        self.port = port
        self.credentials = credentials
        self.speed = speed
        self.run_clock = run_clock
        self.events_emitted = 0
        self.sessions: set[ServerSession] = set()
        self._clock: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        if self.run_clock:
            self._clock = asyncio.create_task(self._run_clock(), name="callcenter-clock")
        log.info("call-center simulator listening on %s:%d", self.host, self.port)

    async def close(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
        await super().close()

    async def _close_sessions(self) -> None:
        for session in list(self.sessions):
            await session.close()

    def advance(self, ticks: int = 1) -> int:
        """Run ``ticks`` model ticks now and broadcast their events; returns how many."""
        emitted = 0
        for _ in range(ticks):
            events = self.center.tick()
            if not events:
                continue
            emitted += len(events)
            data = b"".join(encode_frame(event) for event in events)
            for session in self.sessions:
                if session.logged_in and session.events_on:
                    session.write_now(data)
        self.events_emitted += emitted
        return emitted

    async def _run_clock(self) -> None:
        interval = self.center.tick_seconds / self.speed
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += interval
            await asyncio.sleep(max(due - loop.time(), 0.0))
            # Catch up in one go after a stall instead of drifting behind forever.
            behind = max(int((loop.time() - due) / interval), 0)
            due += behind * interval
            self.advance(1 + behind)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = ServerSession(reader, writer)
        self.sessions.add(session)
        try:
            await session.serve(self)
        finally:
            self.sessions.discard(session)

    # -- ActionHandler ------------------------------------------------------------------------
    async def on_login(self, session: ServerSession, action: Frame) -> bool:
        if not self.credentials.accepts(action, session.challenge):
            log.warning("simulator: refused login for %r", action.get("Username"))
            session.write_now(encode_frame(reply(action, "Error", ("Message", "Authentication failed"))))
            await session.close()
            return False
        accepted = reply(action, "Success", ("Message", "Authentication accepted"))
        booted = [("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", str(self.center.ticks)),
                  ("LastReload", str(self.center.ticks)), ("Status", "Fully Booted")]  # fmt: skip
        session.write_now(encode_frame(accepted) + encode_frame(booted))
        return True

    async def on_action(self, session: ServerSession, action: Frame, name: str) -> None:
        kind = _LISTS.get(name.lower())
        if kind is None:
            session.write_now(encode_frame(reply(action, "Error", ("Message", "Permission denied"))))
            return
        action_id = action.action_id or ""
        if name.lower() == "queuestatus":
            items = self.center.queue_status(action_id)
            queue = action.get("Queue")
            if queue:
                items = [item for item in items if ("Queue", queue) in item]
        else:
            items = self.center.core_show_channels(action_id)
        start = reply(action, "Success", ("EventList", "start"), ("Message", kind[0]))
        done = [("Event", kind[1]), ("ActionID", action_id), ("EventList", "Complete"), ("ListItems", str(len(items)))]
        session.write_now(b"".join(encode_frame(frame) for frame in [start, *items, done]))
