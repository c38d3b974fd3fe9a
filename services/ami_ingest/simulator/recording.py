"""A recorded AMI session (``*.ami`` + optional ``*.json`` sidecar), sorted for replay. Pure, no I/O
beyond reading the two files.

A recording is what one client received. It may hold several connections: each begins with a
banner line (``Asterisk Call Manager/…``), so the bytes are split into :class:`Segment` s there.
Inside a segment every frame is one of:

* the recording client's own answers — ``Response:`` frames (only the asking session gets
  those) and the items of event lists it asked for (events with the list's ActionID, from its
  ``EventList: start`` response up to the ``…Complete`` event). They are never replayed as
  live events; the first ``QueueStatus`` and ``CoreShowChannels`` lists (the sidecar's
  ``sync_actions.initial`` when it names them) become :class:`SyncGate` s where a replay
  answers the client's own resync, and every list is kept to answer later requests;
* a live event (:class:`LiveStep`) — including events that merely carry an ActionID
  (UserEvent, OriginateResponse).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.transport import is_list_end, is_list_start
from services.ami_ingest.ami.wire import FrameParser
from services.ami_ingest.simulator.protocol import BANNER, encode_frame

RESYNC_KINDS = ("QueueStatus", "CoreShowChannels")
_BANNER_LINE = re.compile(rb"Asterisk Call Manager/[0-9][0-9.]*\r?\n")
_LOGIN_MESSAGES = frozenset({"authentication accepted", "authentication failed"})


@dataclass(frozen=True, slots=True)
class RecordedList:
    """An event-list answer: its response, items and ``…Complete`` event, as recorded."""

    kind: str
    action_id: str
    response: Frame
    items: tuple[Frame, ...]
    complete: Frame | None


@dataclass(frozen=True, slots=True)
class LiveStep:
    frame: Frame
    data: bytes
    timestamp: float | None


@dataclass(frozen=True, slots=True)
class SyncGate:
    """Where the recording answered its initial resync: a replay answers the client here."""

    answer: RecordedList


Step = LiveStep | SyncGate


@dataclass(slots=True)
class Segment:
    """One recorded connection."""

    banner: str
    challenge: str | None = None
    login_response: Frame | None = None
    steps: list[Step] = field(default_factory=list)
    lists: list[tuple[int, RecordedList]] = field(default_factory=list)
    """Every recorded list with the number of steps that preceded it."""
    tail: bytes = b""
    """A frame cut by the disconnect that ended this connection, sent as is before closing."""
    malformed: int = 0

    @property
    def login_failed(self) -> bool:
        return self.login_response is not None and (self.login_response.response or "").lower() == "error"

    @property
    def live_count(self) -> int:
        return sum(1 for step in self.steps if isinstance(step, LiveStep))

    def latest_list(self, kind: str, position: int | None = None) -> RecordedList | None:
        """The last recorded list of ``kind`` at or before ``position`` (None: anywhere)."""
        found: RecordedList | None = None
        for at, answer in self.lists:
            if answer.kind == kind and (position is None or at <= position):
                found = answer
        return found


@dataclass(slots=True)
class Recording:
    segments: list[Segment]
    sidecar: dict[str, Any] = field(default_factory=dict)

    @property
    def live_count(self) -> int:
        return sum(segment.live_count for segment in self.segments)


def load_recording(path: str | Path, sidecar_path: str | Path | None = None) -> Recording:
    """Read ``NAME.ami`` and, when it exists, ``NAME.json`` beside it."""
    path = Path(path)
    side = Path(sidecar_path) if sidecar_path is not None else path.with_suffix(".json")
    sidecar: dict[str, Any] = json.loads(side.read_text("utf-8")) if side.exists() else {}
    return parse_recording(path.read_bytes(), sidecar)


def parse_recording(data: bytes, sidecar: dict[str, Any] | None = None) -> Recording:
    sidecar = sidecar or {}
    initial_ids = set((sidecar.get("sync_actions") or {}).get("initial", {}).values())
    kinds_by_id = {
        str(entry.get("action_id")): str(entry.get("action", "")).split(" ")[0]
        for entry in sidecar.get("recorded_connection_actions") or []
    }
    starts = [m.start() for m in _BANNER_LINE.finditer(data)] or [0]
    if starts[0] != 0 and data[: starts[0]].strip():
        starts.insert(0, 0)
    bounds = [*starts, len(data)]
    segments = [
        _parse_segment(data[bounds[i] : bounds[i + 1]], initial_ids, kinds_by_id) for i in range(len(bounds) - 1)
    ]
    return Recording([s for s in segments if s.steps or s.login_response is not None], sidecar)


def _cut_tail(raw: bytes) -> bytes:
    end = max(raw.rfind(b"\r\n\r\n") + 4, raw.rfind(b"\n\n") + 2, 0)
    if end == 0:
        newline = raw.find(b"\n")
        end = newline + 1 if newline >= 0 else len(raw)
    tail = raw[end:]
    return tail if tail.strip() else b""


def _list_kind(answer_id: str, complete: Frame | None, kinds_by_id: dict[str, str]) -> str:
    name = complete.event if complete is not None else None
    if name and name.endswith("Complete"):
        return name[: -len("Complete")]
    return kinds_by_id.get(answer_id, "")


def _parse_segment(raw: bytes, initial_ids: set[str], kinds_by_id: dict[str, str]) -> Segment:
    parser = FrameParser()
    frames = parser.feed(raw)
    parser.finish()
    segment = Segment(banner=parser.banner or BANNER, tail=_cut_tail(raw))
    segment.malformed = sum(parser.malformed.values())
    open_lists: dict[str, tuple[Frame, list[Frame]]] = {}
    pending_gates: dict[str, int] = {}
    for frame in frames:
        action_id = frame.action_id
        if frame.response is not None and frame.event is None:
            message = (frame.get("Message") or "").lower()
            if frame.get("Challenge") is not None and segment.login_response is None:
                segment.challenge = frame.get("Challenge")
            elif message in _LOGIN_MESSAGES and segment.login_response is None:
                segment.login_response = frame
            elif action_id is not None and is_list_start(frame):
                open_lists[action_id] = (frame, [])
                pending_gates[action_id] = len(segment.steps)
            continue
        if action_id is not None and action_id in open_lists:
            response, items = open_lists[action_id]
            if not is_list_end(frame):
                items.append(frame)
                continue
            del open_lists[action_id]
            _close_list(segment, RecordedList("", action_id, response, tuple(items), frame), kinds_by_id)
            continue
        segment.steps.append(LiveStep(frame, encode_frame(frame.headers), _timestamp(frame)))
    for action_id, (response, items) in open_lists.items():  # lists cut by the disconnect
        _close_list(segment, RecordedList("", action_id, response, tuple(items), None), kinds_by_id)
    _place_gates(segment, initial_ids, pending_gates)
    return segment


def _close_list(segment: Segment, draft: RecordedList, kinds_by_id: dict[str, str]) -> None:
    kind = _list_kind(draft.action_id, draft.complete, kinds_by_id)
    answer = RecordedList(kind, draft.action_id, draft.response, draft.items, draft.complete)
    segment.lists.append((len(segment.steps), answer))


def _place_gates(segment: Segment, initial_ids: set[str], positions: dict[str, int]) -> None:
    chosen: dict[str, RecordedList] = {}
    for _, answer in segment.lists:
        if answer.kind in RESYNC_KINDS and answer.action_id in initial_ids:
            chosen.setdefault(answer.kind, answer)
    for _, answer in segment.lists:
        if answer.kind in RESYNC_KINDS:
            chosen.setdefault(answer.kind, answer)
    gates = sorted(((positions.get(a.action_id, 0), a) for a in chosen.values()), key=lambda pair: pair[0])
    for at, answer in reversed(gates):  # from the back, so earlier positions stay valid
        segment.steps.insert(at, SyncGate(answer))
    if gates:
        shift = sorted(at for at, _ in gates)
        segment.lists = [(at + sum(1 for g in shift if g <= at), a) for at, a in segment.lists]


def _timestamp(frame: Frame) -> float | None:
    value = frame.get("Timestamp")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
