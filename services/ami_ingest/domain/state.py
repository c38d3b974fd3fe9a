"""The call-center state machine: events in, full-row StateChanges out. Pure, no I/O.

Rules worth knowing:

* Every QueueMember* event carries the member's whole row, so it is applied as an upsert
  (a QueueMemberStatus for a member we did not know adds it: it is Asterisk's truth).
* ``status`` is the device state of the member's StateInterface; DeviceStateChange updates
  every member (in every queue) with that StateInterface, QueueMemberStatus one member.
* ``in_call`` is per queue: AgentConnect sets it for (queue, interface) with the caller's
  channel as ``current_call_id``; AgentComplete clears it and counts the call. Asterisk
  counts a call (calls_taken, completed, talk time) when it ends, the hold time when it is
  answered; the averages use app_queue's own formula ``new = (3 * old + sample) / 4``.
* Caller positions follow app_queue: a join at position p pushes p.. down, a leave pulls
  the ones behind up. A join of a caller already waiting keeps the known entry, so replaying
  a join the resync snapshot already holds changes nothing.
* Impossible sequences (leave of a caller never seen, hangup of an unknown channel …) are
  counted in ``anomalies`` and skipped; ``apply`` never raises.
* ``count_stats=False`` applies an event without bumping counters; the resync replay uses it
  for events its snapshot already counted.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.channels import ChannelTable
from services.ami_ingest.domain.model import (
    DEVICE_STATE_CODES,
    Caller,
    Channel,
    Operator,
    OperatorRemoved,
    OperatorUpserted,
    Queue,
    QueueUpserted,
    StateChange,
)

_Handler = Callable[[Any, Any, float, bool], list[StateChange]]


def _average(old: int, sample: int) -> int:
    """app_queue's running average: ``((old << 2) - old + sample) >> 2``."""
    return ((old << 2) - old + sample) >> 2


class CallCenterState:
    """Operators by (queue, interface), queues by name, channels by Uniqueid."""

    def __init__(self) -> None:
        self.anomalies: collections.Counter[str] = collections.Counter()
        self.operators: dict[tuple[str, str], Operator] = {}
        self.queues: dict[str, Queue] = {}
        self.channel_table = ChannelTable(self.anomalies)
        self._by_state_interface: dict[str, set[tuple[str, str]]] = {}

    @property
    def channels(self) -> dict[str, Channel]:
        return self.channel_table.channels

    def apply(self, event: ev.Event, now: float, *, count_stats: bool = True) -> list[StateChange]:
        """Apply one event; return the rows it changed (full rows, safe to apply twice)."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            return []  # resync list items and FullyBooted: the resync session's business
        return handler(self, event, now, count_stats)

    # -- queues and members ------------------------------------------------------------

    def _queue(self, name: str, changes: list[StateChange]) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = Queue(name=name)
            changes.append(QueueUpserted(queue))
        return queue

    def _put_queue(self, queue: Queue, changes: list[StateChange]) -> None:
        if self.queues.get(queue.name) != queue:
            self.queues[queue.name] = queue
            changes.append(QueueUpserted(queue))

    def put_operator(self, new: Operator, changes: list[StateChange]) -> None:
        """Store an operator row, keep the StateInterface index and the queue's in-service count."""
        key = new.key
        old = self.operators.get(key)
        if old == new:
            return
        self.operators[key] = new
        if old is not None and old.state_interface != new.state_interface:
            self._by_state_interface.get(old.state_interface, set()).discard(key)
        self._by_state_interface.setdefault(new.state_interface, set()).add(key)
        changes.append(OperatorUpserted(new))
        was_in_call = old is not None and old.in_call
        if was_in_call != new.in_call:
            queue = self._queue(new.queue_name, changes)
            self._put_queue(replace(queue, calls=max(0, queue.calls + (1 if new.in_call else -1))), changes)

    def _on_member_row(self, e: ev.MemberRow, now: float, count_stats: bool) -> list[StateChange]:
        changes: list[StateChange] = []
        self._queue(e.queue, changes)
        old = self.operators.get((e.queue, e.interface)) or Operator(queue_name=e.queue, member_id=e.interface)
        paused = old.paused if e.paused is None else e.paused
        in_call = old.in_call if e.in_call is None else e.in_call
        new = Operator(
            queue_name=e.queue,
            member_id=e.interface,
            member_name=old.member_name if e.member_name is None else e.member_name,
            state_interface=e.state_interface or old.state_interface or e.interface,
            membership=e.membership or old.membership,
            status_code=old.status_code if e.status is None else e.status,
            paused=paused,
            # Asterisk clears the reason on unpause; an old version without the header keeps ours.
            paused_reason="" if not paused else (old.paused_reason if e.paused_reason is None else e.paused_reason),
            penalty=old.penalty if e.penalty is None else e.penalty,
            in_call=in_call,
            calls_taken=old.calls_taken if e.calls_taken is None else e.calls_taken,
            last_call=old.last_call if e.last_call is None else e.last_call,
            login_time=old.login_time if e.login_time is None else e.login_time,
            current_call_id=old.current_call_id if in_call else "",
            ringinuse=old.ringinuse if e.ringinuse is None else e.ringinuse,
            wrapup_time=old.wrapup_time if e.wrapup_time is None else e.wrapup_time,
            last_pause=old.last_pause if e.last_pause is None else e.last_pause,
        )
        self.put_operator(new, changes)
        return changes

    def remove_operator(self, key: tuple[str, str], changes: list[StateChange]) -> None:
        old = self.operators.pop(key, None)
        if old is None:
            return
        self._by_state_interface.get(old.state_interface, set()).discard(key)
        changes.append(OperatorRemoved(key[0], key[1]))
        if old.in_call and key[0] in self.queues:
            queue = self.queues[key[0]]
            self._put_queue(replace(queue, calls=max(0, queue.calls - 1)), changes)

    def _on_member_removed(self, e: ev.MemberRow, now: float, count_stats: bool) -> list[StateChange]:
        key = (e.queue, e.interface)
        if key not in self.operators:
            self.anomalies["removal_of_unknown_member"] += 1
            return []
        changes: list[StateChange] = []
        self.remove_operator(key, changes)
        return changes

    def _on_device_state(self, e: ev.DeviceStateChange, now: float, count_stats: bool) -> list[StateChange]:
        keys = self._by_state_interface.get(e.device)
        code = DEVICE_STATE_CODES.get(e.state)
        if not keys or code is None:
            return []  # not a member's phone (Queue:…_avail pseudo-devices, trunks …)
        changes: list[StateChange] = []
        for key in sorted(keys):
            operator = self.operators[key]
            if operator.status_code != code:
                self.put_operator(replace(operator, status_code=code), changes)
        return changes

    # -- callers -----------------------------------------------------------------------

    def _on_join(self, e: ev.CallerEvent, now: float, count_stats: bool) -> list[StateChange]:
        changes: list[StateChange] = []
        queue = self._queue(e.queue, changes)
        if any(c.channel == e.channel for c in queue.callers):
            return changes  # already waiting (a replayed join the snapshot holds)
        position = e.position if e.position and e.position > 0 else len(queue.callers) + 1
        shifted = [replace(c, position=c.position + 1) if c.position >= position else c for c in queue.callers]
        caller = Caller(
            channel=e.channel,
            unique_id=e.unique_id,
            caller_id_num=e.caller_id_num or "",
            caller_id_name=e.caller_id_name or "",
            position=position,
            waiting_since=now,
        )
        callers = tuple(sorted([*shifted, caller], key=lambda c: c.position))
        self._put_queue(replace(queue, callers=callers), changes)
        return changes

    def _on_leave(self, e: ev.CallerEvent, now: float, count_stats: bool) -> list[StateChange]:
        queue = self.queues.get(e.queue)
        gone = None
        if queue is not None:
            gone = next((c for c in queue.callers if c.channel == e.channel), None)
        if queue is None or gone is None:
            self.anomalies["leave_of_unknown_caller"] += 1
            return []
        callers = tuple(
            replace(c, position=c.position - 1) if c.position > gone.position else c
            for c in queue.callers
            if c is not gone
        )
        changes: list[StateChange] = []
        self._put_queue(replace(queue, callers=callers), changes)
        return changes

    def _on_abandon(self, e: ev.QueueCallerAbandon, now: float, count_stats: bool) -> list[StateChange]:
        changes: list[StateChange] = []
        queue = self._queue(e.queue, changes)
        if count_stats:
            self._put_queue(replace(queue, abandoned=queue.abandoned + 1), changes)
        return changes

    # -- agents ------------------------------------------------------------------------

    def _on_agent_connect(self, e: ev.AgentEvent, now: float, count_stats: bool) -> list[StateChange]:
        changes: list[StateChange] = []
        operator = self.operators.get((e.queue, e.interface))
        if operator is None:
            self.anomalies["agent_event_for_unknown_member"] += 1
            return changes
        queue = self._queue(e.queue, changes)
        if count_stats and e.hold_time is not None:
            self._put_queue(replace(queue, hold_time=_average(queue.hold_time, e.hold_time)), changes)
        call_id = e.caller_channel or e.caller_unique_id
        self.put_operator(replace(operator, in_call=True, current_call_id=call_id), changes)
        return changes

    def _on_agent_complete(self, e: ev.AgentEvent, now: float, count_stats: bool) -> list[StateChange]:
        changes: list[StateChange] = []
        operator = self.operators.get((e.queue, e.interface))
        if operator is None:
            self.anomalies["agent_event_for_unknown_member"] += 1
            return changes
        if count_stats:
            queue = self._queue(e.queue, changes)
            completed = queue.completed + 1
            in_sl = queue.completed_in_sl + (1 if e.hold_time is not None and e.hold_time <= queue.service_level else 0)
            self._put_queue(
                replace(
                    queue,
                    completed=completed,
                    completed_in_sl=in_sl,
                    service_level_perf=round(100.0 * in_sl / completed, 1),
                    talk_time=_average(queue.talk_time, e.talk_time or 0),
                ),
                changes,
            )
            operator = replace(operator, calls_taken=operator.calls_taken + 1, last_call=int(now))
        self.put_operator(replace(operator, in_call=False, current_call_id=""), changes)
        return changes

    def _on_agent_other(self, e: ev.AgentEvent, now: float, count_stats: bool) -> list[StateChange]:
        # AgentCalled / AgentRingNoAnswer / AgentDump change no row: ringing shows in the
        # member's device state, autopause arrives as QueueMemberPause.
        return []

    # -- channels ----------------------------------------------------------------------

    def _on_channel(self, e: ev.ChannelEvent, now: float, count_stats: bool) -> list[StateChange]:
        return self.channel_table.snapshot(e, now)

    def _on_hangup(self, e: ev.Hangup, now: float, count_stats: bool) -> list[StateChange]:
        return self.channel_table.hangup(e)


_HANDLERS: dict[type, _Handler] = {
    **dict.fromkeys(
        (
            ev.QueueMemberAdded,
            ev.QueueMemberStatus,
            ev.QueueMemberPause,
            ev.QueueMemberPenalty,
            ev.QueueMemberRinginuse,
        ),
        CallCenterState._on_member_row,
    ),
    ev.QueueMemberRemoved: CallCenterState._on_member_removed,
    ev.DeviceStateChange: CallCenterState._on_device_state,
    ev.QueueCallerJoin: CallCenterState._on_join,
    ev.QueueCallerLeave: CallCenterState._on_leave,
    ev.QueueCallerAbandon: CallCenterState._on_abandon,
    ev.AgentConnect: CallCenterState._on_agent_connect,
    ev.AgentComplete: CallCenterState._on_agent_complete,
    **dict.fromkeys((ev.AgentCalled, ev.AgentRingNoAnswer, ev.AgentDump), CallCenterState._on_agent_other),
    **dict.fromkeys((ev.Newchannel, ev.Newstate, ev.NewCallerid), CallCenterState._on_channel),
    ev.Hangup: CallCenterState._on_hangup,
    ev.BridgeCreate: lambda s, e, now, c: s.channel_table.bridge_create(e),
    ev.BridgeEnter: lambda s, e, now, c: s.channel_table.bridge_enter(e),
    ev.BridgeLeave: lambda s, e, now, c: s.channel_table.bridge_leave(e),
    ev.BridgeDestroy: lambda s, e, now, c: s.channel_table.bridge_destroy(e),
}
