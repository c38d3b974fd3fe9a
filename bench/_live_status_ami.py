"""A paced AMI server for the event → visible benchmark (run as its own process).

``python -m bench._live_status_ami --port N --rate 500 --seconds 12 --out FILE``

It speaks enough real AMI for ami_ingest (banner, plain/MD5 Login, QueueStatus and
CoreShowChannels lists, Ping through the simulator's session code) and serves one queue with one
member. Once the client's resync is answered and ``--delay`` has passed, it writes
``QueueMemberPause`` events at a steady ``--rate``, each with a unique ``PausedReason``, and
stamps ``time.time()`` right after the event's last byte went to the socket. The stamps go to
``--out`` as JSON ``{reason: epoch_seconds}`` when the run is over.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.simulator.protocol import Credentials, ServerSession, encode_frame, reply

QUEUE = "bench"
MEMBER = "Local/2001@agents"
STATE_INTERFACE = "Custom:agent2001"


def pause_event(reason: str) -> bytes:
    return encode_frame(
        [
            ("Event", "QueueMemberPause"),
            ("Privilege", "agent,all"),
            ("Queue", QUEUE),
            ("MemberName", "Bench Agent"),
            ("Interface", MEMBER),
            ("StateInterface", STATE_INTERFACE),
            ("Membership", "static"),
            ("Penalty", "0"),
            ("CallsTaken", "0"),
            ("LastCall", "0"),
            ("LastPause", "0"),
            ("LoginTime", "0"),
            ("InCall", "0"),
            ("Status", "1"),
            ("Paused", "1"),
            ("PausedReason", reason),
            ("Ringinuse", "0"),
            ("Wrapuptime", "0"),
        ]
    )


def queue_status_items(action_id: str) -> list[list[tuple[str, str]]]:
    params = [("Event", "QueueParams"), ("Queue", QUEUE), ("Max", "0"), ("Strategy", "ringall"), ("Calls", "0"),
              ("Holdtime", "0"), ("TalkTime", "0"), ("Completed", "0"), ("Abandoned", "0"), ("ServiceLevel", "30"),
              ("ServicelevelPerf", "0.0"), ("ServicelevelPerf2", "0.0"), ("Weight", "0"),
              ("ActionID", action_id)]  # fmt: skip
    member = [("Event", "QueueMember"), ("Queue", QUEUE), ("Name", "Bench Agent"), ("Location", MEMBER),
              ("StateInterface", STATE_INTERFACE), ("Membership", "static"), ("Penalty", "0"), ("CallsTaken", "0"),
              ("LastCall", "0"), ("LastPause", "0"), ("LoginTime", "0"), ("InCall", "0"), ("Status", "1"),
              ("Paused", "0"), ("PausedReason", ""), ("Wrapuptime", "0"), ("ActionID", action_id)]  # fmt: skip
    return [params, member]


class PacedServer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.credentials = Credentials(args.username, args.secret)
        self.resynced = asyncio.Event()
        self.sent: dict[str, float] = {}
        self.session: ServerSession | None = None

    async def on_login(self, session: ServerSession, action: Frame) -> bool:
        if not self.credentials.accepts(action, session.challenge):
            session.write_now(encode_frame(reply(action, "Error", ("Message", "Authentication failed"))))
            await session.close()
            return False
        session.write_now(encode_frame(reply(action, "Success", ("Message", "Authentication accepted"))))
        self.session = session
        return True

    async def on_action(self, session: ServerSession, action: Frame, name: str) -> None:
        action_id = action.action_id or ""
        if name.lower() == "queuestatus":
            items, message, done = queue_status_items(action_id), "Queue status will follow", "QueueStatusComplete"
        elif name.lower() == "coreshowchannels":
            items, message, done = [], "Channels will follow", "CoreShowChannelsComplete"
        else:
            session.write_now(encode_frame(reply(action, "Error", ("Message", "Permission denied"))))
            return
        start = reply(action, "Success", ("EventList", "start"), ("Message", message))
        end = [("Event", done), ("ActionID", action_id), ("EventList", "Complete"), ("ListItems", str(len(items)))]
        session.write_now(b"".join(encode_frame(frame) for frame in [start, *items, end]))
        if done == "CoreShowChannelsComplete":
            self.resynced.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await ServerSession(reader, writer).serve(self)

    async def emit(self) -> None:
        await self.resynced.wait()
        await asyncio.sleep(self.args.delay)
        session = self.session
        assert session is not None
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.args.rate
        total = int(self.args.rate * self.args.seconds)
        due = loop.time()
        for n in range(total):
            due += interval
            await asyncio.sleep(max(due - loop.time(), 0.0))
            reason = f"r{n:06d}"
            session.write_now(pause_event(reason))
            self.sent[reason] = time.time()


async def main(args: argparse.Namespace) -> None:
    paced = PacedServer(args)
    server = await asyncio.start_server(paced.handle, "127.0.0.1", args.port)
    print(f"paced AMI server ready on {args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    emitting = asyncio.create_task(paced.emit())
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait({emitting, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if emitting.done():
        out = Path(args.out)
        out.with_suffix(".tmp").write_text(json.dumps(paced.sent))
        out.with_suffix(".tmp").replace(out)
        await waiting
    emitting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await emitting
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench._live_status_ami")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--out", required=True)
    parser.add_argument("--username", default="bench")
    parser.add_argument("--secret", default="bench-secret")
    asyncio.run(main(parser.parse_args()))
