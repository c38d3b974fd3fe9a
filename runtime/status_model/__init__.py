"""The read model of the ``switchboard.status.v1`` contract, shared by the status service and the gateway.

Both hold the live rows in memory and answer reads from them: the status service from the Redis
change stream (rows encoded as protobuf ``Snapshot`` entries), the gateway's mirror from one
``WatchSnapshot`` stream (rows encoded as JSON). What a row *is* does not depend on who holds
it, so it is written once, here:

- :mod:`.rules`: pure read-time rules and filters: the operator row key, which queues depend
  on the time of the answer, ``waiting``/``longest_wait``, staleness, the ListOperators and
  watch filters.
- :mod:`.state`: :class:`~.state.ReadState`, the rows of one revision, loaded and advanced by
  ``ChangeSet`` messages in revision order, each row encoded once by a pluggable
  :class:`~.state.RowEncoding`.

Why under ``runtime/``: services and the gateway import only ``runtime`` (never each other), and
this is what both sides of the status contract need, like the queue layer in ``runtime.queue``.
It depends on nothing but the generated protobuf classes and does no I/O.
"""

from runtime.status_model.rules import (
    earliest_waiting_since,
    has_read_time_fields,
    is_stale,
    longest_wait,
    operator_key,
    operator_key_queue,
    operator_matches,
    queue_view,
)
from runtime.status_model.state import AtAnswerTime, ReadState, RevisionGap, RowEncoding

__all__ = [
    "AtAnswerTime",
    "ReadState",
    "RevisionGap",
    "RowEncoding",
    "earliest_waiting_since",
    "has_read_time_fields",
    "is_stale",
    "longest_wait",
    "operator_key",
    "operator_key_queue",
    "operator_matches",
    "queue_view",
]
