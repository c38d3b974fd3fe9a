"""The ``/api/queue-status`` answers and SSE events as published schemas (see :mod:`gateway.api_schema`).

They describe what :mod:`gateway.status_json` and :mod:`gateway.status_reads` write.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.api_schema import At, DurationMs, Schema

__all__ = [
    "ChangeSetEvent",
    "ClearResult",
    "ResyncResult",
    "Snapshot",
    "SnapshotEvent",
    "StatusChannel",
    "StatusOperator",
    "StatusQueue",
    "StatusQueueDetail",
    "SyncStatus",
]

MemberStatusName = Literal[
    "unknown", "idle", "in_use", "busy", "invalid", "unavailable", "ringing", "ring_in_use", "on_hold"
]
SourceName = Literal["redis", "database", "unknown"]


class StatusOperator(Schema):
    """One queue membership of an operator."""

    queueName: str
    memberId: str
    memberName: str
    stateInterface: str
    membership: Literal["static", "dynamic", "realtime", "unknown"]
    statusCode: int
    status: MemberStatusName
    paused: bool
    pausedReason: str
    penalty: int
    inCall: bool
    callsTaken: int
    lastCallAt: At
    loggedInAt: At
    currentCallId: str
    ringinuse: bool
    lastPauseAt: At
    wrapupTimeMs: DurationMs


class StatusCaller(Schema):
    channel: str
    callerIdNum: str
    callerIdName: str
    position: int
    joinedAt: At
    uniqueId: str


class StatusQueue(Schema):
    name: str
    strategy: str
    waiting: int
    callers: list[StatusCaller]
    completed: int
    abandoned: int
    holdTimeMs: DurationMs
    talkTimeMs: DurationMs
    serviceLevel: int
    serviceLevelPerf: float
    serviceLevelPerf2: float
    longestWaitMs: DurationMs
    max: int
    weight: int


class StatusChannel(Schema):
    channelName: str
    uniqueId: str
    linkedId: str
    callerIdNum: str
    callerIdName: str
    context: str
    extension: str
    state: str
    stateCode: int
    bridgedTo: str
    bridgeId: str
    connectedLineNum: str
    connectedLineName: str
    startedAt: At


class Snapshot(Schema):
    """Operators, queues and channels at one revision (``meta`` says source, stale, asOf)."""

    operators: list[StatusOperator]
    queues: list[StatusQueue]
    channels: list[StatusChannel]
    revision: int


class StatusQueueDetail(Schema):
    queue: StatusQueue
    operators: list[StatusOperator]


class SyncStatus(Schema):
    dbMembers: int
    dbQueues: int
    redisOperators: int
    redisQueues: int
    redisChannels: int
    redisAvailable: bool
    lastIngestAt: At
    stale: bool


class ResyncResult(Schema):
    queuesSeeded: int
    operatorsSeeded: int
    asteriskResyncRequested: bool


class ClearResult(Schema):
    removedKeys: int


class SnapshotEvent(Snapshot):
    """The ``snapshot`` SSE event: the whole state, with the read's freshness inline."""

    source: SourceName
    stale: bool
    asOf: At
    lastIngestAt: At


class OperatorUpserted(Schema):
    kind: Literal["operatorUpserted"]
    operator: StatusOperator


class OperatorRemoved(Schema):
    kind: Literal["operatorRemoved"]
    queueName: str
    memberId: str


class QueueUpserted(Schema):
    kind: Literal["queueUpserted"]
    queue: StatusQueue


class QueueRemoved(Schema):
    kind: Literal["queueRemoved"]
    name: str


class ChannelUpserted(Schema):
    kind: Literal["channelUpserted"]
    channel: StatusChannel


class ChannelRemoved(Schema):
    kind: Literal["channelRemoved"]
    uniqueId: str


StateChange = Annotated[
    OperatorUpserted | OperatorRemoved | QueueUpserted | QueueRemoved | ChannelUpserted | ChannelRemoved,
    Field(discriminator="kind"),
]


class ChangeSetEvent(Schema):
    """The ``changes`` SSE event: apply in ``revision`` order; ``replaceAll`` replaces the state."""

    revision: int
    emittedAt: At
    replaceAll: bool
    changes: list[StateChange]
