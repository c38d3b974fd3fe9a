"""A call center as a deterministic model that emits the AMI events Asterisk 22 would.

Time is simulated: every :meth:`CallCenter.tick` advances the clock by ``tick_seconds`` and
returns the events of that slice, so a seed alone fixes the whole event sequence (the server
only decides how fast ticks happen). Callers (Local channel pairs ``Local/<q>@callers-N;1/;2``)
arrive at ``calls_per_minute``, join a queue, ring an idle unpaused member, are answered (or
ring unanswered), talk, hang up — or give up waiting (``QueueCallerAbandon``). Agents pause and
unpause with reasons. :meth:`queue_status` and :meth:`core_show_channels` answer from the same
model, so a client's resync equals what the events told it.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from services.ami_ingest.simulator.shapes import (
    Channel,
    Headers,
    Member,
    agent_event,
    bridge_event,
    channel_event,
    core_show_channel,
    device_state,
    hangup,
    member_event,
    queue_member_item,
)

START_EPOCH = 1_795_431_500
AGENTS: dict[str, str] = {
    "1001": "Alice Smith", "1002": "Bob Jones", "1003": "Carol White", "1004": "Dave Brown",
    "1005": "Eve Black", "1006": "Frank Green", "1007": "Мария Иванова", "1008": "Grace Hall",
    "1009": "Иван Петров", "1010": "Heidi Klum", "1011": "Ivan Drago", "1012": "Judy Moss",
}  # fmt: skip
QUEUES: dict[str, tuple[str, list[str]]] = {
    "sales": ("ringall", ["1001", "1002", "1003"]),
    "support": ("leastrecent", ["1004", "1005", "1009", "1010"]),
    "billing": ("rrmemory", ["1006", "1007", "1011"]),
    "escalations": ("linear", ["1008", "1012", "1001"]),
}
INITIAL_PAUSES = {"1005": "lunch", "1011": "training"}
PAUSE_REASONS = ("lunch", "meeting", "training", "break")
CALLERS = (("+14155550101", "John Doe"), ("+442071234567", "ACME Corp"), ("+74951234567", "Пётр Сидоров"),
           ("+34911234567", "José García"), ("+8613800138000", "Li Wei"), ("+35312345678", "O'Brien, Pat"))  # fmt: skip


@dataclass(slots=True)
class Call:
    queue: str
    caller1: Channel
    caller2: Channel
    joined: float
    patience: float
    original_position: int
    agent: str | None = None
    agent1: Channel | None = None
    agent2: Channel | None = None
    ring_started: float = 0.0
    ring_until: float = 0.0
    answered_at: float = 0.0
    answers: bool = True
    talk_until: float = 0.0
    bridge_id: str = ""


@dataclass(slots=True)
class QueueStats:
    strategy: str
    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0
    waiting: list[Call] = field(default_factory=list)


class CallCenter:
    def __init__(
        self,
        *,
        seed: int = 1,
        calls_per_minute: float = 12.0,
        tick_seconds: float = 0.5,
        start_epoch: int = START_EPOCH,
    ) -> None:
        """``start_epoch``: the simulated clock's start (fixed by default, so a seed replays the
        same session; the demo feed of ``make run`` starts it at the wall clock)."""
        self.rng = random.Random(seed)
        self.calls_per_minute = calls_per_minute
        self.tick_seconds = tick_seconds
        self.now = float(start_epoch)
        self.ticks = 0
        self.queues = {name: QueueStats(strategy) for name, (strategy, _) in QUEUES.items()}
        self.members: dict[tuple[str, str], Member] = {}
        self.device: dict[str, int] = {ext: 1 for ext in AGENTS}
        self.device["1012"] = 5  # logged out phone: unavailable, never rung
        for queue, (_, exts) in QUEUES.items():
            for ext in exts:
                member = Member(queue, f"Local/{ext}@agents", AGENTS[ext], f"Custom:agent{ext}")
                member.login_time = start_epoch
                member.status = self.device[ext]
                if ext in INITIAL_PAUSES:
                    member.paused, member.paused_reason, member.last_pause = True, INITIAL_PAUSES[ext], start_epoch
                self.members[(queue, member.interface)] = member
        self.channels: dict[str, Channel] = {}
        self.calls: list[Call] = []
        self._chan_seq = 0
        self._uid_seq = 0

    # -- read side (list answers) -----------------------------------------------------------
    def queue_status(self, action_id: str) -> list[Headers]:
        items: list[Headers] = []
        for name, q in self.queues.items():
            items.append([("Event", "QueueParams"), ("Queue", name), ("Max", "0"), ("Strategy", q.strategy),
                          ("Calls", str(len(q.waiting))), ("Holdtime", str(q.holdtime)),
                          ("TalkTime", str(q.talktime)), ("Completed", str(q.completed)),
                          ("Abandoned", str(q.abandoned)), ("ServiceLevel", "30"),
                          ("ServicelevelPerf", "0.0"), ("ServicelevelPerf2", "0.0"), ("Weight", "0"),
                          ("ActionID", action_id)])  # fmt: skip
            items += [queue_member_item(m, action_id) for m in self.members.values() if m.queue == name]
            for position, call in enumerate(q.waiting, 1):
                c = call.caller2
                items.append([("Event", "QueueEntry"), ("Queue", name), ("Position", str(position)),
                              ("Channel", c.name), ("Uniqueid", c.uniqueid), ("CallerIDNum", c.cid_num),
                              ("CallerIDName", c.cid_name), ("ConnectedLineNum", c.cid_num),
                              ("ConnectedLineName", c.cid_name), ("Wait", str(int(self.now - call.joined))),
                              ("Priority", "0"), ("ActionID", action_id)])  # fmt: skip
        return items

    def core_show_channels(self, action_id: str) -> list[Headers]:
        return [core_show_channel(ch, action_id, self.now) for ch in self.channels.values()]

    # -- the clock ----------------------------------------------------------------------------
    def tick(self) -> list[Headers]:
        """Advance ``tick_seconds`` and return the events of that slice, in order."""
        self.ticks += 1
        self.now += self.tick_seconds
        out: list[Headers] = []
        for call in list(self.calls):
            if call.talk_until and self.now >= call.talk_until:
                self._complete(call, out)
            elif call.agent and not call.talk_until and self.now >= call.ring_until:
                (self._answer if call.answers else self._no_answer)(call, out)
            elif call.agent is None and self.now - call.joined >= call.patience:
                self._abandon(call, out)
        if self.rng.random() < self.calls_per_minute * self.tick_seconds / 60.0:
            self._arrive(out)
        for q in self.queues.values():
            for call in q.waiting:
                if call.agent is None:
                    self._ring(call, out)
        if self.rng.random() < 0.02:
            self._toggle_pause(out)
        return out

    # -- transitions ------------------------------------------------------------------------
    def _uid(self) -> str:
        self._uid_seq += 1
        return f"{int(self.now)}.{self._uid_seq}"

    def _local_pair(
        self, base: str, context: str, exten: str, cid: tuple[str, str], linkedid: str | None
    ) -> tuple[Channel, Channel]:
        name = f"Local/{base}-{self._chan_seq:08x}"
        self._chan_seq += 1
        one_uid = self._uid()
        link = linkedid or one_uid
        one = Channel(f"{name};1", one_uid, link, 0, cid[0], cid[1], context, exten, self.now)
        two = Channel(f"{name};2", self._uid(), link, 4, cid[0], cid[1], context, exten, self.now)
        self.channels[one.name] = one
        self.channels[two.name] = two
        return one, two

    def _arrive(self, out: list[Headers]) -> None:
        queue = self.rng.choices(list(self.queues), weights=[4, 3, 2, 1])[0]
        cid = self.rng.choice(CALLERS)
        one, two = self._local_pair(f"{queue}@callers", "callers", queue, cid, None)
        out += [channel_event("Newchannel", "call,all", one), channel_event("Newchannel", "call,all", two)]
        for ch in (two, one):
            ch.state = 6
            out.append(channel_event("Newstate", "call,all", ch))
        q = self.queues[queue]
        call = Call(queue, one, two, self.now, self.rng.uniform(15, 90), len(q.waiting) + 1)
        q.waiting.append(call)
        self.calls.append(call)
        out.append(channel_event("QueueCallerJoin", "agent,all", two, ("Queue", queue),
                                 ("Position", str(len(q.waiting))), ("Count", str(len(q.waiting)))))  # fmt: skip

    def _free_member(self, queue: str) -> Member | None:
        busy = {c.agent for c in self.calls if c.agent}
        candidates = [m for (q, _), m in self.members.items()
                      if q == queue and not m.paused and self.device[m.interface[6:10]] == 1
                      and m.interface not in busy]  # fmt: skip
        return self.rng.choice(candidates) if candidates else None

    def _set_device(self, ext: str, status: int, out: list[Headers], *, in_call: bool | None = None) -> None:
        self.device[ext] = status
        out.append(device_state(f"Custom:agent{ext}", status))
        for m in self.members.values():
            if m.interface == f"Local/{ext}@agents":
                m.status = status
                if in_call is not None:
                    m.in_call = in_call
                out.append(member_event("QueueMemberStatus", m))

    def _ring(self, call: Call, out: list[Headers]) -> None:
        member = self._free_member(call.queue)
        if member is None:
            return
        ext = member.interface[6:10]
        cid = (call.caller2.cid_num, call.caller2.cid_name)
        one, two = self._local_pair(f"{ext}@agents", "agents", call.queue, cid, call.caller1.linkedid)
        out += [channel_event("Newchannel", "call,all", one), channel_event("Newchannel", "call,all", two)]
        call.agent, call.agent1, call.agent2 = member.interface, one, two
        call.ring_started = self.now
        call.ring_until = self.now + self.rng.uniform(1, 5)
        call.answers = self.rng.random() >= 0.1
        out.append(agent_event("AgentCalled", call.caller2, one, member))
        self._set_device(ext, 6, out)

    def _member(self, call: Call) -> Member:
        assert call.agent is not None
        return self.members[(call.queue, call.agent)]

    def _leave_queue(self, call: Call, out: list[Headers]) -> None:
        q = self.queues[call.queue]
        position = q.waiting.index(call) + 1
        q.waiting.remove(call)
        out.append(channel_event("QueueCallerLeave", "agent,all", call.caller2, ("Queue", call.queue),
                                 ("Position", str(position)), ("Count", str(len(q.waiting)))))  # fmt: skip

    def _answer(self, call: Call, out: list[Headers]) -> None:
        assert call.agent1 is not None
        assert call.agent2 is not None
        member = self._member(call)
        for ch in (call.agent2, call.agent1):
            ch.state = 6
            out.append(channel_event("Newstate", "call,all", ch))
        self._leave_queue(call, out)
        hold = int(self.now - call.joined)
        ring = int(self.now - call.ring_started)
        call.answered_at = self.now
        out.append(agent_event("AgentConnect", call.caller2, call.agent1, member,
                               ("HoldTime", str(hold)), ("RingTime", str(ring))))  # fmt: skip
        call.bridge_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        out.append(bridge_event("BridgeCreate", call.bridge_id, 0))
        for count, ch in enumerate((call.agent1, call.caller2), 1):
            ch.bridge_id = call.bridge_id
            out.append(bridge_event("BridgeEnter", call.bridge_id, count, ch))
        call.talk_until = self.now + self.rng.uniform(8, 60)
        self.queues[call.queue].holdtime = hold
        self._set_device(member.interface[6:10], 2, out, in_call=True)

    def _hangup_agent_legs(self, call: Call, out: list[Headers], cause: int, text: str) -> None:
        for ch in (call.agent1, call.agent2):
            if ch is not None:
                out.append(hangup(ch, cause, text))
                self.channels.pop(ch.name, None)

    def _no_answer(self, call: Call, out: list[Headers]) -> None:
        assert call.agent1 is not None
        assert call.agent is not None
        member = self._member(call)
        ring_ms = int((self.now - call.ring_started) * 1000)
        out.append(agent_event("AgentRingNoAnswer", call.caller2, call.agent1, member, ("RingTime", str(ring_ms))))
        self._hangup_agent_legs(call, out, 19, "No answer")
        ext = call.agent[6:10]
        call.agent = call.agent1 = call.agent2 = None
        self._set_device(ext, 1, out)

    def _complete(self, call: Call, out: list[Headers]) -> None:
        assert call.agent1 is not None
        assert call.agent is not None
        member = self._member(call)
        talk = int(self.now - call.answered_at)
        reason = self.rng.choice(("caller", "agent"))
        out.append(agent_event("AgentComplete", call.caller2, call.agent1, member,
                               ("HoldTime", str(self.queues[call.queue].holdtime)),
                               ("TalkTime", str(talk)), ("Reason", reason)))  # fmt: skip
        for count, ch in ((1, call.agent1), (0, call.caller2)):
            out.append(bridge_event("BridgeLeave", call.bridge_id, count, ch))
        out.append(bridge_event("BridgeDestroy", call.bridge_id, 0))
        for ch in (call.caller2, call.caller1):
            out.append(hangup(ch))
            self.channels.pop(ch.name, None)
        self._hangup_agent_legs(call, out, 16, "Normal Clearing")
        q = self.queues[call.queue]
        q.completed += 1
        q.talktime = talk
        for m in self.members.values():
            if m.interface == call.agent:
                m.calls_taken += 1
                m.last_call = int(self.now)
        self._set_device(call.agent[6:10], 1, out, in_call=False)
        self.calls.remove(call)

    def _abandon(self, call: Call, out: list[Headers]) -> None:
        q = self.queues[call.queue]
        position = q.waiting.index(call) + 1
        out.append(channel_event("QueueCallerAbandon", "agent,all", call.caller2, ("Queue", call.queue),
                                 ("Position", str(position)), ("OriginalPosition", str(call.original_position)),
                                 ("HoldTime", str(int(self.now - call.joined)))))  # fmt: skip
        self._leave_queue(call, out)
        q.abandoned += 1
        for ch in (call.caller2, call.caller1):
            out.append(hangup(ch))
            self.channels.pop(ch.name, None)
        self.calls.remove(call)

    def _toggle_pause(self, out: list[Headers]) -> None:
        ext = self.rng.choice(sorted(AGENTS))
        interface = f"Local/{ext}@agents"
        mine = [m for m in self.members.values() if m.interface == interface]
        pause = not mine[0].paused
        reason = self.rng.choice(PAUSE_REASONS) if pause else ""
        for m in mine:
            m.paused, m.paused_reason = pause, reason
            if pause:
                m.last_pause = int(self.now)
            out.append(member_event("QueueMemberPause", m))
