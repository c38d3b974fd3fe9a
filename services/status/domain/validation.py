"""Request and batch validation: every refusal is an ``InvalidArgument`` naming the field.

Limits are generous for Asterisk (queue names are at most 128 characters there) and exist so a
broken client cannot store megabytes in one key. Control characters are refused in names and
ids because the operator hash field joins queue and member with ``\\x1f``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from switchboard.status.v1 import status_pb2

from runtime.errors import InvalidArgument

MAX_QUEUE_NAME: Final = 128
MAX_MEMBER_ID: Final = 256
MAX_SOURCE_ID: Final = 128
MAX_CHANNEL_ID: Final = 256
MAX_TEXT: Final = 1024
MAX_CHANGES_PER_BATCH: Final = 200_000
MAX_WATCH_QUEUES: Final = 1000

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_MEMBER_STATUSES: Final = frozenset(status_pb2.MemberStatus.values())
_MEMBERSHIPS: Final = frozenset(status_pb2.Membership.values())


def check_name(field: str, value: str, max_length: int) -> None:
    """Non-empty, at most ``max_length`` characters, no control characters."""
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if len(value) > max_length:
        raise InvalidArgument(field, f"too long ({len(value)} > {max_length} characters)")
    if _CONTROL.search(value):
        raise InvalidArgument(field, "must not contain control characters")


def check_member_status(field: str, value: int) -> None:
    if value not in _MEMBER_STATUSES:
        raise InvalidArgument(field, f"unknown MemberStatus value {value}")


def _check_text(field: str, value: str) -> None:
    if len(value) > MAX_TEXT:
        raise InvalidArgument(field, f"too long ({len(value)} > {MAX_TEXT} characters)")


def _check_texts(prefix: str, message: object, names: Iterable[str]) -> None:
    for name in names:
        _check_text(f"{prefix}.{name}", getattr(message, name))


def check_operator(prefix: str, operator: status_pb2.Operator) -> None:
    check_name(f"{prefix}.queue_name", operator.queue_name, MAX_QUEUE_NAME)
    check_name(f"{prefix}.member_id", operator.member_id, MAX_MEMBER_ID)
    check_member_status(f"{prefix}.status", operator.status)
    if operator.membership not in _MEMBERSHIPS:
        raise InvalidArgument(f"{prefix}.membership", f"unknown Membership value {operator.membership}")
    if not 0 <= operator.status_code <= 8:
        raise InvalidArgument(f"{prefix}.status_code", f"must be 0-8 (got {operator.status_code})")
    _check_texts(prefix, operator, ("member_name", "state_interface", "paused_reason", "current_call_id"))


def check_queue(prefix: str, queue: status_pb2.Queue) -> None:
    check_name(f"{prefix}.name", queue.name, MAX_QUEUE_NAME)
    _check_text(f"{prefix}.strategy", queue.strategy)
    for index, caller in enumerate(queue.callers):
        where = f"{prefix}.callers[{index}]"
        _check_texts(where, caller, ("channel", "caller_id_num", "caller_id_name", "unique_id"))


def check_channel(prefix: str, channel: status_pb2.Channel) -> None:
    check_name(f"{prefix}.unique_id", channel.unique_id, MAX_CHANNEL_ID)
    _check_texts(
        prefix,
        channel,
        (
            "channel_name",
            "linked_id",
            "caller_id_num",
            "caller_id_name",
            "context",
            "extension",
            "state",
            "bridged_to",
            "connected_line_num",
            "connected_line_name",
            "bridge_id",
        ),
    )


def check_change(prefix: str, change: status_pb2.StateChange) -> None:
    """One StateChange: exactly one member of the oneof, with valid keys and enums."""
    kind = change.WhichOneof("change")
    if kind is None:
        raise InvalidArgument(prefix, "empty StateChange (no change set)")
    where = f"{prefix}.{kind}"
    if kind == "operator_upserted":
        check_operator(where, change.operator_upserted)
    elif kind == "operator_removed":
        check_name(f"{where}.queue_name", change.operator_removed.queue_name, MAX_QUEUE_NAME)
        check_name(f"{where}.member_id", change.operator_removed.member_id, MAX_MEMBER_ID)
    elif kind == "queue_upserted":
        check_queue(where, change.queue_upserted)
    elif kind == "queue_removed":
        check_name(where, change.queue_removed, MAX_QUEUE_NAME)
    elif kind == "channel_upserted":
        check_channel(where, change.channel_upserted)
    else:
        check_name(where, change.channel_removed, MAX_CHANNEL_ID)


def check_batch(batch: status_pb2.IngestBatch) -> None:
    """A whole IngestBatch; the first problem found is raised."""
    check_name("source_id", batch.source_id, MAX_SOURCE_ID)
    if batch.fencing_token <= 0:
        raise InvalidArgument("fencing_token", "must be the lease holder's token (> 0)")
    if len(batch.changes) > MAX_CHANGES_PER_BATCH:
        raise InvalidArgument("changes", f"too many changes ({len(batch.changes)} > {MAX_CHANGES_PER_BATCH})")
    if batch.emitted_at < 0:
        raise InvalidArgument("emitted_at", "must not be negative")
    for index, change in enumerate(batch.changes):
        check_change(f"changes[{index}]", change)


def check_list_operators(request: status_pb2.ListOperatorsRequest) -> None:
    if request.HasField("queue_name"):
        check_name("queue_name", request.queue_name, MAX_QUEUE_NAME)
    if request.HasField("status"):
        check_member_status("status", request.status)


def check_get_operator(request: status_pb2.GetOperatorRequest) -> None:
    check_name("member_id", request.member_id, MAX_MEMBER_ID)
    if request.HasField("queue_name"):
        check_name("queue_name", request.queue_name, MAX_QUEUE_NAME)


def check_get_queue(request: status_pb2.GetQueueRequest) -> None:
    check_name("name", request.name, MAX_QUEUE_NAME)


def check_watch(request: status_pb2.WatchSnapshotRequest) -> None:
    if len(request.queue_names) > MAX_WATCH_QUEUES:
        raise InvalidArgument("queue_names", f"too many queues ({len(request.queue_names)} > {MAX_WATCH_QUEUES})")
    for index, name in enumerate(request.queue_names):
        check_name(f"queue_names[{index}]", name, MAX_QUEUE_NAME)
