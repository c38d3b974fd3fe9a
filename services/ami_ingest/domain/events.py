"""AMI frames → typed events, across Asterisk 1.8–22 header names.

Only what the state needs is kept. A header missing on an older version reads as ``None``
("not said"), so the state keeps what it knew instead of overwriting it with a default.
Frames become these in :mod:`services.ami_ingest.domain.normalize`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemberRow:
    """Every QueueMember* event and the QueueStatus list's QueueMember carry the whole row."""

    queue: str
    interface: str
    member_name: str | None = None
    state_interface: str | None = None
    membership: str | None = None
    penalty: int | None = None
    calls_taken: int | None = None
    last_call: int | None = None
    last_pause: int | None = None
    login_time: int | None = None
    in_call: bool | None = None
    status: int | None = None
    paused: bool | None = None
    paused_reason: str | None = None
    ringinuse: bool | None = None
    wrapup_time: int | None = None
    action_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueMemberAdded(MemberRow):
    pass


@dataclass(frozen=True, slots=True)
class QueueMemberRemoved(MemberRow):
    pass


@dataclass(frozen=True, slots=True)
class QueueMemberStatus(MemberRow):
    pass


@dataclass(frozen=True, slots=True)
class QueueMemberPause(MemberRow):
    pass


@dataclass(frozen=True, slots=True)
class QueueMemberPenalty(MemberRow):
    pass


@dataclass(frozen=True, slots=True)
class QueueMemberRinginuse(MemberRow):
    pass


@dataclass(frozen=True, slots=True)
class QueueMember(MemberRow):
    """A QueueStatus list item."""


@dataclass(frozen=True, slots=True)
class CallerEvent:
    queue: str
    channel: str
    unique_id: str = ""
    linked_id: str = ""
    caller_id_num: str | None = None
    caller_id_name: str | None = None
    position: int | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class QueueCallerJoin(CallerEvent):
    pass


@dataclass(frozen=True, slots=True)
class QueueCallerLeave(CallerEvent):
    pass


@dataclass(frozen=True, slots=True)
class QueueCallerAbandon(CallerEvent):
    original_position: int | None = None
    hold_time: int | None = None


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """app_queue's agent events: the caller (Channel) and the member's leg (DestChannel)."""

    queue: str
    interface: str
    member_name: str | None = None
    caller_channel: str = ""
    caller_unique_id: str = ""
    agent_channel: str = ""
    hold_time: int | None = None  # seconds
    ring_time: int | None = None  # seconds (AgentRingNoAnswer: milliseconds)
    talk_time: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AgentCalled(AgentEvent):
    pass


@dataclass(frozen=True, slots=True)
class AgentConnect(AgentEvent):
    pass


@dataclass(frozen=True, slots=True)
class AgentComplete(AgentEvent):
    pass


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer(AgentEvent):
    pass


@dataclass(frozen=True, slots=True)
class AgentDump(AgentEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """A channel snapshot, as Newchannel / Newstate / Hangup / CoreShowChannel give it."""

    channel: str
    unique_id: str
    linked_id: str | None = None
    state: str | None = None
    caller_id_num: str | None = None
    caller_id_name: str | None = None
    context: str | None = None
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class Newchannel(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class Newstate(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class NewCallerid(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class Hangup(ChannelEvent):
    cause: int | None = None


@dataclass(frozen=True, slots=True)
class CoreShowChannel(ChannelEvent):
    bridge_id: str = ""
    duration: int | None = None  # seconds up
    action_id: str | None = None


@dataclass(frozen=True, slots=True)
class BridgeCreate:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class BridgeDestroy:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class BridgeEnter:
    bridge_id: str
    channel: str
    unique_id: str


@dataclass(frozen=True, slots=True)
class BridgeLeave:
    bridge_id: str
    channel: str
    unique_id: str


@dataclass(frozen=True, slots=True)
class DeviceStateChange:
    device: str
    state: str  # NOT_INUSE, INUSE …


@dataclass(frozen=True, slots=True)
class FullyBooted:
    pass


@dataclass(frozen=True, slots=True)
class QueueParams:
    queue: str
    strategy: str | None = None
    calls: int | None = None  # callers waiting
    hold_time: int | None = None
    talk_time: int | None = None
    completed: int | None = None
    abandoned: int | None = None
    service_level: int | None = None
    service_level_perf: float | None = None
    action_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    queue: str
    channel: str
    unique_id: str = ""
    position: int | None = None
    caller_id_num: str | None = None
    caller_id_name: str | None = None
    wait: int | None = None  # seconds waited so far
    action_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListComplete:
    """QueueStatusComplete / CoreShowChannelsComplete: the end of a resync list."""

    name: str
    action_id: str | None = None
    items: int | None = None


Event = (
    MemberRow
    | CallerEvent
    | AgentEvent
    | ChannelEvent
    | BridgeCreate
    | BridgeDestroy
    | BridgeEnter
    | BridgeLeave
    | DeviceStateChange
    | FullyBooted
    | QueueParams
    | QueueEntry
    | ListComplete
)
