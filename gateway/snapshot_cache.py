"""Reuse the JSON of a snapshot's operators and channels while the live state has not changed.

Converting 200 operators and 100 channels to JSON dicts costs about as much as the gRPC call
itself, and wall screens and other teams' pollers ask for the same revision again and again.
Rows are reused only when the answer comes from Redis and its identity matches exactly:
``(revision, last_ingest_at, row counts)``. The revision alone is not enough: a Redis that
lost its data counts revisions from 0 again, but not at the same ``last_ingest_at``. Queues are
always converted afresh, because ``longestWait`` is measured at the time of the answer.
"""

from __future__ import annotations

from typing import Any

from switchboard.status.v1 import status_pb2

from gateway.status_json import SOURCE_NAMES, channel_json, operator_json, queue_json

__all__ = ["SnapshotJsonCache"]

_Key = tuple[int, float, int, int]


class SnapshotJsonCache:
    def __init__(self) -> None:
        self._key: _Key | None = None
        self._operators: list[dict[str, Any]] = []
        self._channels: list[dict[str, Any]] = []
        self.hits = 0

    def _rows(self, snapshot: status_pb2.Snapshot) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        key: _Key = (snapshot.revision, snapshot.last_ingest_at, len(snapshot.operators), len(snapshot.channels))
        cacheable = snapshot.source == status_pb2.SOURCE_REDIS and snapshot.revision > 0
        if cacheable and key == self._key:
            self.hits += 1
            return self._operators, self._channels
        operators = [operator_json(op) for op in snapshot.operators]
        channels = [channel_json(c) for c in snapshot.channels]
        if cacheable:
            self._key, self._operators, self._channels = key, operators, channels
        return operators, channels

    def snapshot_json(self, snapshot: status_pb2.Snapshot) -> dict[str, Any]:
        """Same result as :func:`gateway.status_json.snapshot_json`, reusing unchanged rows."""
        operators, channels = self._rows(snapshot)
        return {
            "operators": operators,
            "queues": [queue_json(q) for q in snapshot.queues],
            "channels": channels,
            "timestamp": snapshot.timestamp,
            "source": SOURCE_NAMES.get(snapshot.source, "unknown"),
            "stale": snapshot.stale,
            "revision": snapshot.revision,
            "lastIngestAt": snapshot.last_ingest_at,
        }
