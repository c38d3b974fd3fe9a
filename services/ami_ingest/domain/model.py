"""The live picture of a contact center, as rows the status service stores.

Rows are frozen: every change builds a new row, so a row handed out in a StateChange never
changes under its consumer (changes are batched before they are sent).
"""

from __future__ import annotations

from dataclasses import dataclass

# QueueMemberStatus' ``Status`` (AST_DEVICE_*) by code.
STATUS_NAMES: tuple[str, ...] = (
    "unknown",
    "idle",
    "in_use",
    "busy",
    "invalid",
    "unavailable",
    "ringing",
    "ring_in_use",
    "on_hold",
)

# DeviceStateChange's ``State`` names → the same codes.
DEVICE_STATE_CODES: dict[str, int] = {
    "UNKNOWN": 0,
    "NOT_INUSE": 1,
    "INUSE": 2,
    "BUSY": 3,
    "INVALID": 4,
    "UNAVAILABLE": 5,
    "RINGING": 6,
    "RINGINUSE": 7,
    "ONHOLD": 8,
}


def status_name(code: int) -> str:
    """The name of a member status code; out-of-range codes read as ``unknown``."""
    return STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else "unknown"


@dataclass(frozen=True, slots=True)
class Operator:
    """One member of one queue (a member in three queues is three operators)."""

    queue_name: str
    member_id: str  # the AMI Interface, e.g. PJSIP/1001 or Local/1001@agents
    member_name: str = ""
    state_interface: str = ""
    membership: str = "static"  # static | dynamic | realtime
    status_code: int = 0
    paused: bool = False
    paused_reason: str = ""
    penalty: int = 0
    in_call: bool = False  # in a call taken from THIS queue
    calls_taken: int = 0
    last_call: int = 0  # epoch seconds, 0 = never
    login_time: int = 0
    current_call_id: str = ""  # the caller's channel while in_call
    ringinuse: bool = False
    wrapup_time: int = 0
    last_pause: int = 0

    @property
    def status(self) -> str:
        return status_name(self.status_code)

    @property
    def key(self) -> tuple[str, str]:
        return (self.queue_name, self.member_id)


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller waiting in a queue."""

    channel: str
    unique_id: str = ""
    caller_id_num: str = ""
    caller_id_name: str = ""
    position: int = 0
    waiting_since: float = 0.0  # epoch seconds


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    strategy: str = ""
    callers: tuple[Caller, ...] = ()
    completed: int = 0
    abandoned: int = 0
    hold_time: int = 0  # Asterisk's running average, seconds
    talk_time: int = 0
    service_level: int = 0  # seconds
    service_level_perf: float = 0.0  # percent answered within service_level
    calls: int = 0  # calls in service: members of this queue connected to a caller
    completed_in_sl: int = 0  # answered within service_level, for service_level_perf

    @property
    def waiting(self) -> int:
        return len(self.callers)

    def longest_wait(self, now: float) -> float:
        """Seconds the longest-waiting caller has waited at ``now`` (0 when nobody waits)."""
        if not self.callers:
            return 0.0
        return max(0.0, now - min(c.waiting_since for c in self.callers))


@dataclass(frozen=True, slots=True)
class Channel:
    channel_name: str
    unique_id: str
    linked_id: str = ""
    caller_id_num: str = ""
    caller_id_name: str = ""
    context: str = ""
    extension: str = ""
    state: str = ""  # Asterisk's ChannelStateDesc: Down, Ring, Ringing, Up, Busy …
    bridged_to: str = ""  # the peer channel's name while bridged
    started_at: float = 0.0
    bridge_id: str = ""


@dataclass(frozen=True, slots=True)
class OperatorUpserted:
    operator: Operator


@dataclass(frozen=True, slots=True)
class OperatorRemoved:
    queue_name: str
    member_id: str


@dataclass(frozen=True, slots=True)
class QueueUpserted:
    queue: Queue


@dataclass(frozen=True, slots=True)
class QueueRemoved:
    name: str


@dataclass(frozen=True, slots=True)
class ChannelUpserted:
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelRemoved:
    unique_id: str


StateChange = OperatorUpserted | OperatorRemoved | QueueUpserted | QueueRemoved | ChannelUpserted | ChannelRemoved
