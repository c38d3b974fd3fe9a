"""Read-time rules and filters over live status rows (pure functions of the rows and a time)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final

from switchboard.status.v1 import status_pb2

OPERATOR_KEY_SEPARATOR: Final = "\x1f"
"""Between queue name and member id in an operator's key (validation refuses it in names)."""


def operator_key(queue_name: str, member_id: str) -> str:
    """Key of one operator row, ``<queue>\\x1f<member_id>``: operators are ordered by it."""
    return f"{queue_name}{OPERATOR_KEY_SEPARATOR}{member_id}"


def operator_key_queue(key: str) -> str:
    """Queue name part of an operator key."""
    return key.partition(OPERATOR_KEY_SEPARATOR)[0]


def is_stale(last_ingest_at: float, now: float, stale_after_seconds: float) -> bool:
    """Stale: the ingest never wrote, or not for longer than ``stale_after_seconds``."""
    return last_ingest_at <= 0 or now - last_ingest_at > stale_after_seconds


def has_read_time_fields(queue: status_pb2.Queue) -> bool:
    """True when the queue's answer depends on the time of the answer (callers waiting)."""
    return bool(queue.callers) or queue.waiting != 0 or queue.longest_wait != 0.0


def earliest_waiting_since(queue: status_pb2.Queue) -> float:
    """When the longest-waiting caller started waiting; 0 when no caller says."""
    starts = [caller.waiting_since for caller in queue.callers if caller.waiting_since > 0]
    return min(starts) if starts else 0.0


def epoch_ms(seconds: float) -> int:
    """Epoch seconds (or a duration in seconds) as integer milliseconds; 0 stays 0 (never/unknown).

    The status contract's ``*_ms`` fields are filled with this from the seconds fields they
    replace (still filled until a v2), so the two never disagree."""
    return round(seconds * 1000) if seconds > 0 else 0


def longest_wait(earliest: float, now: float) -> float:
    """Seconds the longest-waiting caller has waited at ``now`` (0 when unknown)."""
    return max(0.0, now - earliest) if earliest else 0.0


def queue_view(queue: status_pb2.Queue, now: float) -> status_pb2.Queue:
    """The queue as answered at ``now``: ``waiting`` = callers waiting, ``longest_wait`` in seconds."""
    if not has_read_time_fields(queue):
        return queue
    view = status_pb2.Queue()
    view.CopyFrom(queue)
    view.waiting = len(queue.callers)
    view.longest_wait = longest_wait(earliest_waiting_since(queue), now)
    view.longest_wait_ms = epoch_ms(view.longest_wait)
    return view


def operator_matches(
    operator: status_pb2.Operator,
    *,
    queue_name: str | None = None,
    status: int | None = None,
    paused: bool | None = None,
) -> bool:
    """The ListOperators filters; ``None`` means "any"."""
    return (
        (queue_name is None or operator.queue_name == queue_name)
        and (status is None or operator.status == status)
        and (paused is None or operator.paused == paused)
    )


def is_member_row(operator: status_pb2.Operator, member_id: str, queue_name: str | None = None) -> bool:
    """The GetOperator filter: a row of ``member_id`` (in ``queue_name`` when given)."""
    return operator.member_id == member_id and (queue_name is None or operator.queue_name == queue_name)


def operators_of_member(
    operators: Iterable[status_pb2.Operator], member_id: str, queue_name: str | None = None
) -> list[status_pb2.Operator]:
    """Every row of ``member_id`` (one per queue), optionally in one queue only."""
    return [op for op in operators if is_member_row(op, member_id, queue_name)]


def change_concerns(change: status_pb2.StateChange, queue_names: Collection[str]) -> bool:
    """Whether a watcher filtered to ``queue_names`` receives ``change`` (channels always flow)."""
    kind = change.WhichOneof("change")
    if kind == "operator_upserted":
        return change.operator_upserted.queue_name in queue_names
    if kind == "operator_removed":
        return change.operator_removed.queue_name in queue_names
    if kind == "queue_upserted":
        return change.queue_upserted.name in queue_names
    if kind == "queue_removed":
        return change.queue_removed in queue_names
    return True


def filter_changeset(changes: status_pb2.ChangeSet, queue_names: Collection[str]) -> status_pb2.ChangeSet | None:
    """The part of ``changes`` a filtered watcher sees; ``None`` when nothing is left to say."""
    kept = [change for change in changes.changes if change_concerns(change, queue_names)]
    if not kept and not changes.replace_all:
        return None
    return status_pb2.ChangeSet(
        revision=changes.revision,
        changes=kept,
        emitted_at=changes.emitted_at,
        emitted_at_ms=changes.emitted_at_ms,
        replace_all=changes.replace_all,
    )
