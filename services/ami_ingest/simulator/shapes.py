"""Header shapes of Asterisk 22 AMI events, copied from the recorded fixtures (header names and
order exactly as Asterisk writes them). Pure functions returning header lists."""

from __future__ import annotations

from dataclasses import dataclass

Headers = list[tuple[str, str]]

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
DEVICE_STATE = {0: "UNKNOWN", 1: "NOT_INUSE", 2: "INUSE", 3: "BUSY", 5: "UNAVAILABLE", 6: "RINGING", 8: "ONHOLD"}


@dataclass(slots=True)
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    state: int
    cid_num: str
    cid_name: str
    context: str
    exten: str
    created: float
    priority: int = 1
    application: str = "AppQueue"
    app_data: str = "(Outgoing Line)"
    bridge_id: str = ""


@dataclass(slots=True)
class Member:
    queue: str
    interface: str
    name: str
    state_interface: str
    membership: str = "static"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    status: int = 1
    paused: bool = False
    paused_reason: str = ""


def channel_headers(ch: Channel, prefix: str = "") -> Headers:
    return [
        (f"{prefix}Channel", ch.name),
        (f"{prefix}ChannelState", str(ch.state)),
        (f"{prefix}ChannelStateDesc", STATE_DESC.get(ch.state, "Unknown")),
        (f"{prefix}CallerIDNum", ch.cid_num),
        (f"{prefix}CallerIDName", ch.cid_name),
        (f"{prefix}ConnectedLineNum", ch.cid_num),
        (f"{prefix}ConnectedLineName", ch.cid_name),
        (f"{prefix}Language", "en"),
        (f"{prefix}AccountCode", ""),
        (f"{prefix}Context", ch.context),
        (f"{prefix}Exten", ch.exten),
        (f"{prefix}Priority", str(ch.priority)),
        (f"{prefix}Uniqueid", ch.uniqueid),
        (f"{prefix}Linkedid", ch.linkedid),
    ]


def channel_event(event: str, privilege: str, ch: Channel, *extra: tuple[str, str]) -> Headers:
    return [("Event", event), ("Privilege", privilege), *channel_headers(ch), *extra]


def agent_event(event: str, caller: Channel, agent: Channel, member: Member, *extra: tuple[str, str]) -> Headers:
    """AgentCalled / AgentConnect / AgentComplete / AgentRingNoAnswer."""
    return [
        ("Event", event),
        ("Privilege", "agent,all"),
        *channel_headers(caller),
        *channel_headers(agent, "Dest"),
        ("Queue", member.queue),
        ("Interface", member.interface),
        ("MemberName", member.name),
        *extra,
    ]


def member_fields(m: Member) -> Headers:
    return [
        ("StateInterface", m.state_interface),
        ("Membership", m.membership),
        ("Penalty", str(m.penalty)),
        ("CallsTaken", str(m.calls_taken)),
        ("LastCall", str(m.last_call)),
        ("LastPause", str(m.last_pause)),
        ("LoginTime", str(m.login_time)),
        ("InCall", "1" if m.in_call else "0"),
        ("Status", str(m.status)),
        ("Paused", "1" if m.paused else "0"),
        ("PausedReason", m.paused_reason),
    ]


def member_event(event: str, m: Member) -> Headers:
    """QueueMemberStatus / QueueMemberPause / QueueMemberAdded / QueueMemberRemoved."""
    return [
        ("Event", event),
        ("Privilege", "agent,all"),
        ("Queue", m.queue),
        ("MemberName", m.name),
        ("Interface", m.interface),
        *member_fields(m),
        ("Ringinuse", "0"),
        ("Wrapuptime", "0"),
    ]


def queue_member_item(m: Member, action_id: str) -> Headers:
    """The QueueStatus list item (``Name``/``Location``, unlike the events)."""
    return [
        ("Event", "QueueMember"),
        ("Queue", m.queue),
        ("Name", m.name),
        ("Location", m.interface),
        *member_fields(m),
        ("Wrapuptime", "0"),
        ("ActionID", action_id),
    ]


def device_state(device: str, status: int) -> Headers:
    return [
        ("Event", "DeviceStateChange"),
        ("Privilege", "call,all"),
        ("Device", device),
        ("State", DEVICE_STATE.get(status, "UNKNOWN")),
    ]


def bridge_event(event: str, bridge_id: str, count: int, ch: Channel | None = None) -> Headers:
    headers: Headers = [
        ("Event", event),
        ("Privilege", "call,all"),
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", str(count)),
        ("BridgeVideoSourceMode", "none"),
    ]
    if ch is not None:
        headers += channel_headers(ch)
    return headers


def hangup(ch: Channel, cause: int = 16, text: str = "Normal Clearing") -> Headers:
    return channel_event("Hangup", "call,all", ch, ("Cause", str(cause)), ("Cause-txt", text))


def core_show_channel(ch: Channel, action_id: str, now: float) -> Headers:
    seconds = max(int(now - ch.created), 0)
    duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return [
        ("Event", "CoreShowChannel"),
        ("ActionID", action_id),
        *channel_headers(ch),
        ("Application", ch.application),
        ("ApplicationData", ch.app_data),
        ("Duration", duration),
        ("BridgeId", ch.bridge_id),
    ]
