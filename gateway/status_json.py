"""Explicit status proto → JSON converters; the JSON names are a public contract.

Other teams' dashboards and the acceptance checks read these names, so each one is written out
here instead of derived from the proto (``MessageToDict`` would give ``queueName`` but also
``"MEMBER_STATUS_IDLE"``, drop zero values and turn int64 into strings).

The JSON follows docs/api-conventions.md, whatever the proto carries: instants are epoch
milliseconds as integers under names ending in ``At`` (``null`` for never/unknown), durations are
integer milliseconds under names ending in ``Ms``. The status proto's seconds (``last_call``,
``waiting_since``, ``hold_time`` …) are converted here, in one place (:func:`at_ms`,
:func:`duration_ms`).
"""

from __future__ import annotations

from typing import Any

from switchboard.status.v1 import status_pb2

__all__ = [
    "MEMBERSHIP_NAMES",
    "SOURCE_NAMES",
    "STATUS_NAMES",
    "at_ms",
    "caller_json",
    "change_set_json",
    "channel_json",
    "duration_ms",
    "meta_json",
    "operator_json",
    "queue_json",
    "snapshot_json",
    "state_change_json",
    "status_from_name",
    "sync_status_json",
]

STATUS_NAMES: dict[int, str] = {
    status_pb2.MEMBER_STATUS_UNKNOWN: "unknown",
    status_pb2.MEMBER_STATUS_IDLE: "idle",
    status_pb2.MEMBER_STATUS_IN_USE: "in_use",
    status_pb2.MEMBER_STATUS_BUSY: "busy",
    status_pb2.MEMBER_STATUS_INVALID: "invalid",
    status_pb2.MEMBER_STATUS_UNAVAILABLE: "unavailable",
    status_pb2.MEMBER_STATUS_RINGING: "ringing",
    status_pb2.MEMBER_STATUS_RING_IN_USE: "ring_in_use",
    status_pb2.MEMBER_STATUS_ON_HOLD: "on_hold",
}
_STATUS_BY_NAME: dict[str, int] = {name: code for code, name in STATUS_NAMES.items()}

MEMBERSHIP_NAMES: dict[int, str] = {
    status_pb2.MEMBERSHIP_UNSPECIFIED: "unknown",
    status_pb2.MEMBERSHIP_STATIC: "static",
    status_pb2.MEMBERSHIP_DYNAMIC: "dynamic",
    status_pb2.MEMBERSHIP_REALTIME: "realtime",
}

SOURCE_NAMES: dict[int, str] = {
    status_pb2.SOURCE_UNSPECIFIED: "unknown",
    status_pb2.SOURCE_REDIS: "redis",
    status_pb2.SOURCE_DATABASE: "database",
}


def at_ms(epoch_seconds: float, epoch_ms: int = 0) -> int | None:
    """An instant as epoch milliseconds, or None for never/unknown: the contract's ``*_ms`` field
    when the status service filled it, else its deprecated seconds field (an older service)."""
    if epoch_ms > 0:
        return epoch_ms
    return round(epoch_seconds * 1000) if epoch_seconds > 0 else None


def duration_ms(seconds: float) -> int:
    """A duration in seconds as integer milliseconds."""
    return round(seconds * 1000)


def status_from_name(name: str) -> status_pb2.MemberStatus.ValueType:
    """``"in_use"`` → ``MEMBER_STATUS_IN_USE``; raises KeyError for an unknown name."""
    return status_pb2.MemberStatus.ValueType(_STATUS_BY_NAME[name])


def operator_json(op: status_pb2.Operator) -> dict[str, Any]:
    return {
        "queueName": op.queue_name,
        "memberId": op.member_id,
        "memberName": op.member_name,
        "stateInterface": op.state_interface,
        "membership": MEMBERSHIP_NAMES.get(op.membership, "unknown"),
        "statusCode": op.status_code,
        "status": STATUS_NAMES.get(op.status, "unknown"),
        "paused": op.paused,
        "pausedReason": op.paused_reason,
        "penalty": op.penalty,
        "inCall": op.in_call,
        "callsTaken": op.calls_taken,
        "lastCallAt": at_ms(op.last_call, op.last_call_ms),
        "loggedInAt": at_ms(op.login_time, op.login_time_ms),
        "currentCallId": op.current_call_id,
        "ringinuse": op.ringinuse,
        "lastPauseAt": at_ms(op.last_pause, op.last_pause_ms),
        "wrapupTimeMs": duration_ms(op.wrapup_time),
    }


def caller_json(caller: status_pb2.Caller) -> dict[str, Any]:
    return {
        "channel": caller.channel,
        "callerIdNum": caller.caller_id_num,
        "callerIdName": caller.caller_id_name,
        "position": caller.position,
        "joinedAt": at_ms(caller.waiting_since, caller.waiting_since_ms),
        "uniqueId": caller.unique_id,
    }


def queue_json(queue: status_pb2.Queue) -> dict[str, Any]:
    return {
        "name": queue.name,
        "strategy": queue.strategy,
        "waiting": queue.waiting,
        "callers": [caller_json(c) for c in queue.callers],
        "completed": queue.completed,
        "abandoned": queue.abandoned,
        "holdTimeMs": duration_ms(queue.hold_time),
        "talkTimeMs": duration_ms(queue.talk_time),
        "serviceLevel": queue.service_level,
        "serviceLevelPerf": queue.service_level_perf,
        "serviceLevelPerf2": queue.service_level_perf2,
        "longestWaitMs": duration_ms(queue.longest_wait),
        "max": queue.max,
        "weight": queue.weight,
    }


def channel_json(channel: status_pb2.Channel) -> dict[str, Any]:
    return {
        "channelName": channel.channel_name,
        "uniqueId": channel.unique_id,
        "linkedId": channel.linked_id,
        "callerIdNum": channel.caller_id_num,
        "callerIdName": channel.caller_id_name,
        "context": channel.context,
        "extension": channel.extension,
        "state": channel.state,
        "stateCode": channel.state_code,
        "bridgedTo": channel.bridged_to,
        "bridgeId": channel.bridge_id,
        "connectedLineNum": channel.connected_line_num,
        "connectedLineName": channel.connected_line_name,
        "startedAt": at_ms(channel.started_at, channel.started_at_ms),
    }


def meta_json(meta: status_pb2.ReadMeta) -> dict[str, Any]:
    """The envelope's ``meta`` of a read: where the answer came from and as of when."""
    return {
        "source": SOURCE_NAMES.get(meta.source, "unknown"),
        "stale": meta.stale,
        "asOf": at_ms(meta.timestamp, meta.timestamp_ms),
        "lastIngestAt": at_ms(meta.last_ingest_at, meta.last_ingest_at_ms),
    }


def snapshot_json(snapshot: status_pb2.Snapshot) -> dict[str, Any]:
    """The SSE ``snapshot`` event: the rows, the revision and the read's meta in one object."""
    return {
        "operators": [operator_json(op) for op in snapshot.operators],
        "queues": [queue_json(q) for q in snapshot.queues],
        "channels": [channel_json(c) for c in snapshot.channels],
        "revision": snapshot.revision,
        "source": SOURCE_NAMES.get(snapshot.source, "unknown"),
        "stale": snapshot.stale,
        "asOf": at_ms(snapshot.timestamp, snapshot.timestamp_ms),
        "lastIngestAt": at_ms(snapshot.last_ingest_at, snapshot.last_ingest_at_ms),
    }


def state_change_json(change: status_pb2.StateChange) -> dict[str, Any]:
    """One change as ``{"kind": ..., <payload>}``; kinds mirror the proto's oneof in camelCase."""
    kind = change.WhichOneof("change")
    if kind == "operator_upserted":
        return {"kind": "operatorUpserted", "operator": operator_json(change.operator_upserted)}
    if kind == "operator_removed":
        key = change.operator_removed
        return {"kind": "operatorRemoved", "queueName": key.queue_name, "memberId": key.member_id}
    if kind == "queue_upserted":
        return {"kind": "queueUpserted", "queue": queue_json(change.queue_upserted)}
    if kind == "queue_removed":
        return {"kind": "queueRemoved", "name": change.queue_removed}
    if kind == "channel_upserted":
        return {"kind": "channelUpserted", "channel": channel_json(change.channel_upserted)}
    if kind == "channel_removed":
        return {"kind": "channelRemoved", "uniqueId": change.channel_removed}
    return {"kind": "unknown"}


def change_set_json(changes: status_pb2.ChangeSet) -> dict[str, Any]:
    return {
        "revision": changes.revision,
        "emittedAt": at_ms(changes.emitted_at, changes.emitted_at_ms),
        "replaceAll": changes.replace_all,
        "changes": [state_change_json(c) for c in changes.changes],
    }


def sync_status_json(status: status_pb2.SyncStatus) -> dict[str, Any]:
    return {
        "dbMembers": status.db_members,
        "dbQueues": status.db_queues,
        "redisOperators": status.redis_operators,
        "redisQueues": status.redis_queues,
        "redisChannels": status.redis_channels,
        "redisAvailable": status.redis_available,
        "lastIngestAt": at_ms(status.last_ingest_at, status.last_ingest_at_ms),
        "stale": status.stale,
    }
