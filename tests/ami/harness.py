"""Building frames, and replaying a recorded session through parser + normalizer + state
(initial resync answered in the recording, then events), for the pure AMI tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser
from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.normalize import EventNormalizer
from services.ami_ingest.domain.resync import ResyncSession
from services.ami_ingest.domain.state import CallCenterState

FIXTURE_DIR = Path("/work/shared/fixtures/ami")
_LIST_EVENTS = {
    "queueparams",
    "queuemember",
    "queueentry",
    "queuestatuscomplete",
    "coreshowchannel",
    "coreshowchannelscomplete",
}


def wire(*headers: tuple[str, str]) -> bytes:
    """One frame as Asterisk writes it."""
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n"


BANNER = b"Asterisk Call Manager/11.0.0\r\n"
"""The first line Asterisk writes on a new AMI connection."""
LOGIN_OK = wire(("Response", "Success"), ("ActionID", "1"), ("Message", "Authentication accepted"))


def frame(**headers: str) -> Frame:
    return Frame(tuple(headers.items()))


def one(**headers: str) -> ev.Event | None:
    """The event a fresh normalizer reads from one frame of ``headers``."""
    return EventNormalizer().normalize(frame(**headers))


@dataclass
class Replayed:
    sidecar: dict[str, Any]
    parser: FrameParser
    frames: list[Frame]
    normalizer: EventNormalizer
    state: CallCenterState
    session: ResyncSession
    events: int


def replay_fixture(name: str) -> Replayed:
    """Parse NAME.ami, answer the initial resync from its lists, apply every live event.

    The recording connection's own final QueueStatus / CoreShowChannels lists (named in the
    sidecar's ``sync_actions.final``) are dropped, so the final state comes from events.
    """
    sidecar = json.loads((FIXTURE_DIR / f"{name}.json").read_text())
    parser = FrameParser()
    frames = parser.feed((FIXTURE_DIR / f"{name}.ami").read_bytes())
    parser.finish()
    actions = sidecar.get("sync_actions") or {}
    initial = actions.get("initial", {})
    final_ids = set(actions.get("final", {}).values())
    state = CallCenterState()
    session = ResyncSession(state, initial.get("QueueStatus"), initial.get("CoreShowChannels"))
    normalizer = EventNormalizer()
    now = 1_000_000.0
    count = 0
    for item in frames:
        name_ = (item.event or "").lower()
        if name_ in _LIST_EVENTS and item.action_id in final_ids:
            continue
        for event in normalizer.events(item):
            now += 0.001
            count += 1
            session.feed(event, now)
    return Replayed(sidecar, parser, frames, normalizer, state, session, count)
