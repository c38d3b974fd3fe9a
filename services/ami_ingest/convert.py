"""Domain rows and changes → the status contract's protobuf messages.

:func:`encode_changes` also collapses a batch: when one row changed several times before the
batch left, only its last change is sent. That is what keeps a burst (a resync replay, a busy
hour) cheap: the status service applies whole rows, so the intermediate versions carry nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from switchboard.status.v1 import status_pb2

from runtime.status_model.rules import epoch_ms
from services.ami_ingest.domain.model import (
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

_MEMBERSHIP = {
    "static": status_pb2.MEMBERSHIP_STATIC,
    "dynamic": status_pb2.MEMBERSHIP_DYNAMIC,
    "realtime": status_pb2.MEMBERSHIP_REALTIME,
}


CHANNEL_STATE_CODES = {
    "Down": 0, "Rsrvd": 1, "OffHook": 2, "Dialing": 3, "Ring": 4, "Ringing": 5, "Up": 6, "Busy": 7,
    "Dialing Offhook": 8, "Pre-ring": 9,
}  # fmt: skip
"""Asterisk's ChannelStateDesc → its ChannelState code (``enum ast_channel_state``), so a row's
``state`` and ``state_code`` agree; 0 for a description Asterisk does not define."""


def operator_pb(op: Operator) -> status_pb2.Operator:
    code = op.status_code if 0 <= op.status_code <= 8 else 0
    return status_pb2.Operator(
        queue_name=op.queue_name,
        member_id=op.member_id,
        member_name=op.member_name,
        state_interface=op.state_interface,
        membership=_MEMBERSHIP.get(op.membership, status_pb2.MEMBERSHIP_UNSPECIFIED),
        status_code=op.status_code,
        status=code,  # type: ignore[arg-type]  # MemberStatus values are Asterisk's codes
        paused=op.paused,
        paused_reason=op.paused_reason,
        penalty=op.penalty,
        in_call=op.in_call,
        calls_taken=op.calls_taken,
        last_call=op.last_call,
        login_time=op.login_time,
        current_call_id=op.current_call_id,
        ringinuse=op.ringinuse,
        last_pause=op.last_pause,
        wrapup_time=op.wrapup_time,
        last_call_ms=epoch_ms(op.last_call),
        login_time_ms=epoch_ms(op.login_time),
        last_pause_ms=epoch_ms(op.last_pause),
    )


def queue_pb(queue: Queue) -> status_pb2.Queue:
    return status_pb2.Queue(
        name=queue.name,
        strategy=queue.strategy,
        waiting=queue.waiting,
        callers=[
            status_pb2.Caller(
                channel=c.channel,
                caller_id_num=c.caller_id_num,
                caller_id_name=c.caller_id_name,
                position=c.position,
                waiting_since=c.waiting_since,
                waiting_since_ms=epoch_ms(c.waiting_since),
                unique_id=c.unique_id,
            )
            for c in queue.callers
        ],
        completed=queue.completed,
        abandoned=queue.abandoned,
        hold_time=queue.hold_time,
        talk_time=queue.talk_time,
        service_level=queue.service_level,
        service_level_perf=queue.service_level_perf,
    )


def channel_pb(channel: Channel) -> status_pb2.Channel:
    return status_pb2.Channel(
        channel_name=channel.channel_name,
        unique_id=channel.unique_id,
        linked_id=channel.linked_id,
        caller_id_num=channel.caller_id_num,
        caller_id_name=channel.caller_id_name,
        context=channel.context,
        extension=channel.extension,
        state=channel.state,
        state_code=CHANNEL_STATE_CODES.get(channel.state, 0),
        bridged_to=channel.bridged_to,
        started_at=channel.started_at,
        started_at_ms=epoch_ms(channel.started_at),
        bridge_id=channel.bridge_id,
    )


def change_pb(change: StateChange) -> status_pb2.StateChange:
    match change:
        case OperatorUpserted(operator=op):
            return status_pb2.StateChange(operator_upserted=operator_pb(op))
        case OperatorRemoved(queue_name=queue_name, member_id=member_id):
            return status_pb2.StateChange(
                operator_removed=status_pb2.OperatorKey(queue_name=queue_name, member_id=member_id)
            )
        case QueueUpserted(queue=queue):
            return status_pb2.StateChange(queue_upserted=queue_pb(queue))
        case QueueRemoved(name=name):
            return status_pb2.StateChange(queue_removed=name)
        case ChannelUpserted(channel=channel):
            return status_pb2.StateChange(channel_upserted=channel_pb(channel))
        case ChannelRemoved(unique_id=unique_id):
            return status_pb2.StateChange(channel_removed=unique_id)
    raise TypeError(f"not a state change: {change!r}")


_ROW_KEYS: dict[type, Callable[[Any], tuple[str, ...]]] = {
    OperatorUpserted: lambda change: ("operator", change.operator.queue_name, change.operator.member_id),
    OperatorRemoved: lambda change: ("operator", change.queue_name, change.member_id),
    QueueUpserted: lambda change: ("queue", change.queue.name),
    QueueRemoved: lambda change: ("queue", change.name),
    ChannelUpserted: lambda change: ("channel", change.channel.unique_id),
    ChannelRemoved: lambda change: ("channel", change.unique_id),
}
"""The row each kind of change is about, looked up by the change's class: a burst's every change
is keyed here, and a dict lookup is a third of what a ``match`` over six class patterns costs."""


def encode_changes(changes: Iterable[StateChange]) -> list[status_pb2.StateChange]:
    """The last change of every row, in the order the rows last changed."""
    last: dict[tuple[str, ...], StateChange] = {}
    forget = last.pop
    row_keys = _ROW_KEYS
    for change in changes:
        try:
            key = row_keys[type(change)](change)
        except KeyError:
            raise TypeError(f"not a state change: {change!r}") from None
        forget(key, None)
        last[key] = change
    return [change_pb(change) for change in last.values()]


def state_changes(state: CallCenterState) -> Sequence[StateChange]:
    """The whole state as upserts: what a ``replace_all`` batch carries."""
    rows: list[StateChange] = [QueueUpserted(q) for q in state.queues.values()]
    rows.extend(OperatorUpserted(op) for op in state.operators.values())
    rows.extend(ChannelUpserted(ch) for ch in state.channels.values())
    return rows
