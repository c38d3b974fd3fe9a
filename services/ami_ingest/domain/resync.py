"""Resync: rebuild the picture from Asterisk's own lists, without losing live events.

After every (re)connect the ingest sends ``QueueStatus`` (→ QueueParams / QueueMember /
QueueEntry … QueueStatusComplete) and ``CoreShowChannels`` (→ CoreShowChannel …
CoreShowChannelsComplete). Live events keep flowing while the lists stream, so a
:class:`ResyncSession` collects the list items, buffers every live event in arrival order,
and when both lists are complete:

1. :func:`reconcile` makes the state equal to the lists (stale operators, callers, queues
   and channels are removed; every row is re-sent in full), then
2. the buffered events are re-applied in order on top.

Why re-applying is right although some buffered events happened *before* the snapshot
(the lists are taken at some point while the events continue):

* member rows, device states, channel snapshots, bridge enter/leave, AgentConnect:
  they carry or set absolute values, so after the replay every row holds the value of its
  latest event, which is at least as new as the snapshot (no event after the snapshot
  means the snapshot already equals that latest value);
* join / leave: a join for a caller the snapshot already lists is a no-op (the snapshot's
  position and wait are kept); a leave of a caller the snapshot no longer lists is skipped;
  a join and its leave both before the snapshot add and remove the caller again. The order
  of the buffer is the wire order, so a leave is never replayed before its join;
* hangups of channels the snapshot no longer lists are skipped, Newchannel of a channel
  it lists updates it in place;
* counters are not idempotent (abandoned, completed, calls_taken, hold/talk averages): an
  event counts only if it arrived after its queue's QueueParams line, i.e. after the
  snapshot of that queue was taken (app_queue lists a queue under its lock).

Anomalies met while replaying are expected and are not counted.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, replace

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.model import (
    Caller,
    Channel,
    ChannelRemoved,
    ChannelUpserted,
    Operator,
    OperatorRemoved,
    OperatorUpserted,
    Queue,
    QueueRemoved,
    QueueUpserted,
    StateChange,
)
from services.ami_ingest.domain.state import CallCenterState

_QUEUE_LIST = (ev.QueueParams, ev.QueueMember, ev.QueueEntry)


@dataclass(slots=True)
class ResyncResult:
    """What Asterisk listed: the truth at (roughly) the time of the lists."""

    queues: dict[str, ev.QueueParams] = field(default_factory=dict)
    members: list[ev.QueueMember] = field(default_factory=list)
    entries: list[ev.QueueEntry] = field(default_factory=list)
    channels: list[ev.CoreShowChannel] = field(default_factory=list)


class ResyncCollector:
    """Collects the two lists; ``None`` action ids accept list items of any ActionID."""

    def __init__(self, queue_status_action_id: str | None = None, channels_action_id: str | None = None):
        self.queue_status_action_id = queue_status_action_id
        self.channels_action_id = channels_action_id
        self.result = ResyncResult()
        self.queues_complete = False
        self.channels_complete = False

    @property
    def done(self) -> bool:
        return self.queues_complete and self.channels_complete

    def _ours(self, action_id: str | None, expected: str | None) -> bool:
        return expected is None or action_id == expected

    def add(self, event: ev.Event) -> bool:
        """Take a list item or list end of this resync; ``False`` for anything else."""
        result = self.result
        if isinstance(event, _QUEUE_LIST) and self._ours(event.action_id, self.queue_status_action_id):
            if isinstance(event, ev.QueueParams):
                result.queues[event.queue] = event
            elif isinstance(event, ev.QueueMember):
                result.members.append(event)
            else:
                result.entries.append(event)
            return True
        if isinstance(event, ev.CoreShowChannel) and self._ours(event.action_id, self.channels_action_id):
            result.channels.append(event)
            return True
        if isinstance(event, ev.ListComplete):
            if event.name.lower() == "queuestatuscomplete" and self._ours(event.action_id, self.queue_status_action_id):
                self.queues_complete = True
                return True
            if event.name.lower() == "coreshowchannelscomplete" and self._ours(
                event.action_id, self.channels_action_id
            ):
                self.channels_complete = True
                return True
        return False


def _event_queue(event: ev.Event) -> str | None:
    queue = getattr(event, "queue", None)
    return queue if isinstance(queue, str) else None


class ResyncSession:
    """One resync: list items go to the collector, live events wait in order in a buffer."""

    def __init__(
        self,
        state: CallCenterState,
        queue_status_action_id: str | None = None,
        channels_action_id: str | None = None,
    ) -> None:
        self.state = state
        self.collector = ResyncCollector(queue_status_action_id, channels_action_id)
        # (event, time received, whether its queue's snapshot line had already been seen)
        self._buffer: list[tuple[ev.Event, float, bool]] = []
        self.finished = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, event: ev.Event, now: float) -> list[StateChange]:
        """Offer one event. Returns [] while the lists stream; the changes when they end."""
        if self.finished:
            return self.state.apply(event, now)
        if not self.collector.add(event):
            queue = _event_queue(event)
            after_snapshot = queue is not None and queue in self.collector.result.queues
            self._buffer.append((event, now, after_snapshot))
            return []
        if not self.collector.done:
            return []
        self.finished = True
        changes = reconcile(self.state, self.collector.result, now)
        saved = collections.Counter(self.state.anomalies)
        for buffered, received, after_snapshot in self._buffer:
            changes.extend(self.state.apply(buffered, received, count_stats=after_snapshot))
        self._buffer.clear()
        # Replayed events meet rows the snapshot already settled: those are not anomalies.
        self.state.anomalies.clear()
        self.state.anomalies.update(saved)
        return changes


def _queue_from(params: ev.QueueParams, entries: list[ev.QueueEntry], old: Queue | None, now: float) -> Queue:
    known = {c.channel: c for c in old.callers} if old else {}
    callers: list[Caller] = []
    for entry in sorted(entries, key=lambda e: e.position or 0):
        previous = known.get(entry.channel)
        callers.append(
            Caller(
                channel=entry.channel,
                unique_id=entry.unique_id,
                caller_id_num=entry.caller_id_num or "",
                caller_id_name=entry.caller_id_name or "",
                position=entry.position or len(callers) + 1,
                waiting_since=previous.waiting_since if previous else now - (entry.wait or 0),
            )
        )
    completed = params.completed or 0
    perf = params.service_level_perf or 0.0
    return Queue(
        name=params.queue,
        strategy=params.strategy or (old.strategy if old else ""),
        callers=tuple(callers),
        completed=completed,
        abandoned=params.abandoned or 0,
        hold_time=params.hold_time or 0,
        talk_time=params.talk_time or 0,
        service_level=params.service_level or 0,
        service_level_perf=perf,
        completed_in_sl=round(perf * completed / 100.0),
    )


def _channel_from(item: ev.CoreShowChannel, old: Channel | None, now: float) -> Channel:
    return Channel(
        channel_name=item.channel,
        unique_id=item.unique_id,
        linked_id=item.linked_id or item.unique_id,
        caller_id_num=item.caller_id_num or "",
        caller_id_name=item.caller_id_name or "",
        context=item.context or "",
        extension=item.extension or "",
        state=item.state or "",
        started_at=old.started_at if old else now - (item.duration or 0),
        bridge_id=item.bridge_id,
    )


def _current_call(member: ev.QueueMember, old: Operator | None, state: CallCenterState) -> str:
    """The caller an in-call member talks to: kept if still up, else read from the bridges."""
    if not member.in_call:
        return ""
    names = {c.channel_name for c in state.channels.values()}
    if old is not None and old.current_call_id in names:
        return old.current_call_id
    prefix = member.interface + "-"  # PJSIP/1001-0000002a, Local/1001@agents-00000013;1
    for channel in state.channels.values():
        if channel.channel_name.startswith(prefix) and channel.bridged_to:
            return channel.bridged_to
    return ""


def reconcile(state: CallCenterState, result: ResyncResult, now: float) -> list[StateChange]:
    """Make ``state`` equal Asterisk's lists; returns removals, then every row in full."""
    changes: list[StateChange] = []
    old_operators = dict(state.operators)
    old_queues = dict(state.queues)
    old_channels = dict(state.channels)

    channels = {i.unique_id: _channel_from(i, old_channels.get(i.unique_id), now) for i in result.channels}
    state.channel_table.rebuild(channels)
    changes.extend(ChannelRemoved(uid) for uid in old_channels if uid not in state.channels)
    changes.extend(ChannelUpserted(c) for c in state.channels.values())

    entries: dict[str, list[ev.QueueEntry]] = {}
    for entry in result.entries:
        entries.setdefault(entry.queue, []).append(entry)
    queues = {
        name: _queue_from(params, entries.get(name, []), old_queues.get(name), now)
        for name, params in result.queues.items()
    }
    changes.extend(QueueRemoved(name) for name in old_queues if name not in queues)
    fresh = {(m.queue, m.interface) for m in result.members}
    for key in old_operators:
        if key not in fresh:
            changes.append(OperatorRemoved(key[0], key[1]))
    state.operators.clear()
    state._by_state_interface.clear()
    state.queues.clear()
    state.queues.update(queues)
    in_service: collections.Counter[str] = collections.Counter()
    rows: list[StateChange] = []
    for member in result.members:
        old = old_operators.get((member.queue, member.interface))
        state._on_member_row(member, now, True)  # adds the queue too if QueueParams lacked it
        operator = state.operators[(member.queue, member.interface)]
        operator = replace(operator, current_call_id=_current_call(member, old, state))
        state.operators[operator.key] = operator
        in_service[member.queue] += operator.in_call
        rows.append(OperatorUpserted(operator))
    for name, queue in state.queues.items():
        state.queues[name] = replace(queue, calls=in_service[name])
    changes.extend(QueueUpserted(q) for q in state.queues.values())
    changes.extend(rows)
    return changes
