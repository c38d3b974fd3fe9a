"""Frames → typed events (:mod:`.events`), with the header names of Asterisk 1.8 to 22.

Aliases handled: ``QueueMemberPaused`` (old name of QueueMemberPause), ``Join``/``Leave``
(old QueueCallerJoin/Leave), ``Location``/``Member`` for ``Interface``, ``Name`` for
``MemberName``, ``CallerID`` for ``CallerIDNum``, ``State`` for ``ChannelStateDesc``,
``BridgeID`` for ``BridgeUniqueid``; header names compare case-blind (``Uniqueid``/``UniqueID``).
Old agent events (before Asterisk 12) name the member's channel ``Channel`` and the caller by
``Uniqueid`` only; from 12 on ``Channel`` is the caller and ``DestChannel`` the member's leg.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Final

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.domain import events as ev

Headers = dict[str, str]


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip() or 0)
    except ValueError:
        try:
            return int(float(value))
        except ValueError:
            return None


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip() or 0)
    except ValueError:
        return None


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("1", "yes", "true", "on")


def _cid(value: str | None) -> str | None:
    """Asterisk writes a missing caller id as ``<unknown>``."""
    if value is None:
        return None
    return "" if value == "<unknown>" else value


def _duration(value: str | None) -> int | None:
    """CoreShowChannel's ``Duration``: ``HH:MM:SS`` (or plain seconds)."""
    if not value:
        return None
    total = 0
    for part in value.split(":"):
        number = _int(part)
        if number is None:
            return None
        total = total * 60 + number
    return total


def _member_row(cls: type[ev.MemberRow], h: Headers) -> ev.MemberRow | None:
    queue = h.get("queue")
    interface = h.get("interface") or h.get("location") or h.get("member")
    if not queue or not interface:
        return None
    paused_reason = h.get("pausedreason")
    return cls(
        queue=queue,
        interface=interface,
        member_name=h.get("membername") or h.get("name"),
        state_interface=h.get("stateinterface"),
        membership=h.get("membership"),
        penalty=_int(h.get("penalty")),
        calls_taken=_int(h.get("callstaken")),
        last_call=_int(h.get("lastcall")),
        last_pause=_int(h.get("lastpause")),
        login_time=_int(h.get("logintime")),
        in_call=_bool(h.get("incall")),
        status=_int(h.get("status")),
        paused=_bool(h.get("paused")),
        paused_reason=paused_reason,
        ringinuse=_bool(h.get("ringinuse")),
        wrapup_time=_int(h.get("wrapuptime")),
        action_id=h.get("actionid"),
    )


def _caller(cls: type[ev.CallerEvent], h: Headers) -> ev.CallerEvent | None:
    queue = h.get("queue")
    channel = h.get("channel")
    if not queue or not channel:
        return None
    common = {
        "queue": queue,
        "channel": channel,
        "unique_id": h.get("uniqueid", ""),
        "linked_id": h.get("linkedid", ""),
        "caller_id_num": _cid(h.get("calleridnum") or h.get("callerid")),
        "caller_id_name": _cid(h.get("calleridname")),
        "position": _int(h.get("position")),
        "count": _int(h.get("count")),
    }
    if cls is ev.QueueCallerAbandon:
        return ev.QueueCallerAbandon(
            **common,  # type: ignore[arg-type]
            original_position=_int(h.get("originalposition")),
            hold_time=_int(h.get("holdtime")),
        )
    return cls(**common)  # type: ignore[arg-type]


def _agent(cls: type[ev.AgentEvent], h: Headers) -> ev.AgentEvent | None:
    queue = h.get("queue")
    interface = h.get("interface") or h.get("member") or h.get("location")
    if not queue or not interface:
        return None
    if "destchannel" in h:  # Asterisk 12+
        caller_channel = h.get("channel", "")
        caller_unique_id = h.get("uniqueid", "")
        agent_channel = h["destchannel"]
    else:  # 1.8/11: Channel is the member's leg, the caller is known by its Uniqueid
        caller_channel = ""
        caller_unique_id = h.get("uniqueid", "") or h.get("bridgedchannel", "")
        agent_channel = h.get("channel", "")
    return cls(
        queue=queue,
        interface=interface,
        member_name=h.get("membername"),
        caller_channel=caller_channel,
        caller_unique_id=caller_unique_id,
        agent_channel=agent_channel,
        hold_time=_int(h.get("holdtime")),
        ring_time=_int(h.get("ringtime")),
        talk_time=_int(h.get("talktime")),
        reason=h.get("reason"),
    )


def _channel(cls: type[ev.ChannelEvent], h: Headers) -> ev.ChannelEvent | None:
    channel = h.get("channel")
    unique_id = h.get("uniqueid")
    if not channel or not unique_id:
        return None
    common = {
        "channel": channel,
        "unique_id": unique_id,
        "linked_id": h.get("linkedid"),
        "state": h.get("channelstatedesc") or h.get("state"),
        "caller_id_num": _cid(h.get("calleridnum") or h.get("callerid")),
        "caller_id_name": _cid(h.get("calleridname")),
        "context": h.get("context"),
        "extension": h.get("exten") or h.get("extension"),
    }
    if cls is ev.Hangup:
        return ev.Hangup(**common, cause=_int(h.get("cause")))  # type: ignore[arg-type]
    if cls is ev.CoreShowChannel:
        return ev.CoreShowChannel(
            **common,  # type: ignore[arg-type]
            bridge_id=h.get("bridgeid") or h.get("bridgeuniqueid") or "",
            duration=_duration(h.get("duration")),
            action_id=h.get("actionid"),
        )
    return cls(**common)  # type: ignore[arg-type]


def _bridge(cls: type[ev.BridgeEnter | ev.BridgeLeave], h: Headers) -> ev.Event | None:
    bridge_id = h.get("bridgeuniqueid") or h.get("bridgeid")
    if not bridge_id or not h.get("uniqueid"):
        return None
    return cls(bridge_id=bridge_id, channel=h.get("channel", ""), unique_id=h["uniqueid"])


def _bridge_lifecycle(cls: type[ev.BridgeCreate | ev.BridgeDestroy], h: Headers) -> ev.Event | None:
    bridge_id = h.get("bridgeuniqueid") or h.get("bridgeid")
    return cls(bridge_id=bridge_id) if bridge_id else None


def _queue_params(h: Headers) -> ev.Event | None:
    queue = h.get("queue")
    if not queue:
        return None
    return ev.QueueParams(
        queue=queue,
        strategy=h.get("strategy"),
        calls=_int(h.get("calls")),
        hold_time=_int(h.get("holdtime")),
        talk_time=_int(h.get("talktime")),
        completed=_int(h.get("completed")),
        abandoned=_int(h.get("abandoned")),
        service_level=_int(h.get("servicelevel")),
        service_level_perf=_float(h.get("servicelevelperf")),
        action_id=h.get("actionid"),
    )


def _queue_entry(h: Headers) -> ev.Event | None:
    queue = h.get("queue")
    channel = h.get("channel")
    if not queue or not channel:
        return None
    return ev.QueueEntry(
        queue=queue,
        channel=channel,
        unique_id=h.get("uniqueid", ""),
        position=_int(h.get("position")),
        caller_id_num=_cid(h.get("calleridnum") or h.get("callerid")),
        caller_id_name=_cid(h.get("calleridname")),
        wait=_int(h.get("wait")),
        action_id=h.get("actionid"),
    )


def _device_state(h: Headers) -> ev.Event | None:
    device = h.get("device")
    state = h.get("state")
    return ev.DeviceStateChange(device=device, state=state.upper()) if device and state else None


def _complete(h: Headers) -> ev.Event | None:
    return ev.ListComplete(name=h["event"], action_id=h.get("actionid"), items=_int(h.get("listitems")))


def _legacy_bridge(h: Headers) -> _Pair | None:
    """Asterisk 1.8/11 ``Bridge`` (Bridgestate Link/Unlink) → enter/leave of a pseudo-bridge."""
    first, second = h.get("uniqueid1"), h.get("uniqueid2")
    if not first or not second:
        return None
    bridge_id = f"legacy:{first}+{second}"
    cls = ev.BridgeLeave if h.get("bridgestate", "").lower() == "unlink" else ev.BridgeEnter
    # Two events are needed: the state machine handles the second channel via the pair below.
    return _Pair(
        cls(bridge_id=bridge_id, channel=h.get("channel1", ""), unique_id=first),
        cls(bridge_id=bridge_id, channel=h.get("channel2", ""), unique_id=second),
    )


class _Pair(tuple[ev.Event, ev.Event]):
    """Two events from one frame (old ``Bridge``); :meth:`EventNormalizer.events` flattens it."""

    __slots__ = ()

    def __new__(cls, first: ev.Event, second: ev.Event) -> _Pair:
        return super().__new__(cls, (first, second))


def _fully_booted(h: Headers) -> ev.Event:
    return ev.FullyBooted()


_Builder = Callable[[Headers], "ev.Event | _Pair | None"]

# Which builder makes which event, by lower-cased event name. Plain data, read on every lookup.
EVENT_BUILDERS: Final[Mapping[str, _Builder]] = MappingProxyType(
    {
        "queuememberadded": partial(_member_row, ev.QueueMemberAdded),
        "queuememberremoved": partial(_member_row, ev.QueueMemberRemoved),
        "queuememberstatus": partial(_member_row, ev.QueueMemberStatus),
        "queuememberpause": partial(_member_row, ev.QueueMemberPause),
        "queuememberpaused": partial(_member_row, ev.QueueMemberPause),
        "queuememberpenalty": partial(_member_row, ev.QueueMemberPenalty),
        "queuememberringinuse": partial(_member_row, ev.QueueMemberRinginuse),
        "queuemember": partial(_member_row, ev.QueueMember),
        "queuecallerjoin": partial(_caller, ev.QueueCallerJoin),
        "join": partial(_caller, ev.QueueCallerJoin),
        "queuecallerleave": partial(_caller, ev.QueueCallerLeave),
        "leave": partial(_caller, ev.QueueCallerLeave),
        "queuecallerabandon": partial(_caller, ev.QueueCallerAbandon),
        "agentcalled": partial(_agent, ev.AgentCalled),
        "agentconnect": partial(_agent, ev.AgentConnect),
        "agentcomplete": partial(_agent, ev.AgentComplete),
        "agentringnoanswer": partial(_agent, ev.AgentRingNoAnswer),
        "agentdump": partial(_agent, ev.AgentDump),
        "newchannel": partial(_channel, ev.Newchannel),
        "newstate": partial(_channel, ev.Newstate),
        "newcallerid": partial(_channel, ev.NewCallerid),
        "hangup": partial(_channel, ev.Hangup),
        "coreshowchannel": partial(_channel, ev.CoreShowChannel),
        "bridgecreate": partial(_bridge_lifecycle, ev.BridgeCreate),
        "bridgedestroy": partial(_bridge_lifecycle, ev.BridgeDestroy),
        "bridgeenter": partial(_bridge, ev.BridgeEnter),
        "bridgeleave": partial(_bridge, ev.BridgeLeave),
        "bridge": _legacy_bridge,
        "devicestatechange": _device_state,
        "fullybooted": _fully_booted,
        "queueparams": _queue_params,
        "queueentry": _queue_entry,
        "queuestatuscomplete": _complete,
        "coreshowchannelscomplete": _complete,
    }
)
# Per normalizer, builders by the name as spelled on the wire, filled as names are seen (unknown
# ones map to None): a busy stream repeats a few dozen names, so no name is lower-cased twice.
# Bounded, so a peer inventing names cannot grow it.
_BY_WIRE_NAME_MAX = 1024


class EventNormalizer:
    """Turns frames into events; counts unknown events and frames it could not use."""

    __slots__ = ("_by_wire_name", "invalid", "unknown")

    def __init__(self) -> None:
        self.unknown: collections.Counter[str] = collections.Counter()
        self.invalid: collections.Counter[str] = collections.Counter()
        self._by_wire_name: dict[str, _Builder | None] = {}

    def events(self, frame: Frame) -> list[ev.Event]:
        """The events one frame carries: none (a response, an unknown event), one, or two."""
        name = frame.event
        if name is None:
            return []
        by_wire_name = self._by_wire_name
        try:
            builder = by_wire_name[name]
        except KeyError:
            builder = EVENT_BUILDERS.get(name.lower())
            if len(by_wire_name) < _BY_WIRE_NAME_MAX:
                by_wire_name[name] = builder
        if builder is None:
            self.unknown[name] += 1
            return []
        headers = frame.to_lower_dict()  # only for events we use: most of a busy stream is not
        built = builder(headers)
        if built is None:
            self.invalid[name] += 1
            return []
        if isinstance(built, _Pair):
            return list(built)
        return [built]

    def normalize(self, frame: Frame) -> ev.Event | None:
        """The first event of a frame, or ``None``."""
        found = self.events(frame)
        return found[0] if found else None
