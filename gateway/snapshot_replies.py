"""GetSnapshot replies read by the gateway's gRPC path, their operator and channel rows recognised
by one comparison of bytes when they are the previous reply's.

The status service writes a snapshot as its operator rows, then its channel rows, then the rest:
the revision, the queues (a queue with callers changes with every answer: its longest wait) and
the time of the answer (``services.status.domain.state``). Between two reads the rows mostly stay
as they were, yet reading them from the parsed reply costs a new bytes object per row and a
comparison of each with the previous reply's (:class:`~gateway.status_reads.RowJsonCache`): at
1,000 operators that is most of what the gateway spends on a snapshot besides the HTTP response.

So once two replies in a row held the same operators and channels, :class:`SnapshotReplies`
keeps those rows as the status service writes them: every operator record (field 1), then every
channel record (field 3), encoded as one ``bytes``, beside their JSON arrays. A reply that begins
with exactly those bytes begins with exactly those records, and parsing a message's bytes is
parsing each part and merging the parts (repeated fields concatenated, the last value of any
other field kept): so when the remainder holds no operator or channel of its own, the reply's
operators and channels are the kept ones, and every other field is the remainder's. Only the
remainder is parsed. Any other reply is parsed whole, as before; a service that writes its
fields in another order is never matched and costs one comparison per read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from switchboard.status.v1 import status_pb2

from gateway.encoded_rows import SnapshotRows, encoded_rows_class

if TYPE_CHECKING:
    from gateway.status_reads import RowJsonCache

__all__ = ["SnapshotReplies"]

_SNAPSHOT = encoded_rows_class(status_pb2.Snapshot)


@dataclass(frozen=True, slots=True)
class _KnownRows:
    encoded: bytes
    """The operator records, then the channel records, as the status service writes them."""
    operators: Sequence[bytes]
    channels: Sequence[bytes]
    """Their JSON arrays, in pieces (:meth:`RowJsonCache.chunks`)."""


class SnapshotReplies:
    """Reads GetSnapshot replies into the reply (its queues and other fields) and the JSON arrays
    of its operators and channels, through the gateway's row caches."""

    def __init__(
        self, operators: RowJsonCache[status_pb2.Operator], channels: RowJsonCache[status_pb2.Channel]
    ) -> None:
        self._operators = operators
        self._channels = channels
        self._known: _KnownRows | None = None
        self._tried = False
        """The rows of the last whole parse were tried as known rows already (and did not match)."""

    def read(self, encoded: bytes) -> tuple[SnapshotRows, Sequence[bytes], Sequence[bytes]]:
        """``(reply, operators, channels)``: the reply's fields but its operators and channels (those
        may be missing from it), and their JSON arrays, in pieces."""
        known = self._known
        if known is not None and encoded.startswith(known.encoded):
            rest = cast(SnapshotRows, _SNAPSHOT.FromString(encoded[len(known.encoded) :]))
            if not rest.operators and not rest.channels:
                return rest, known.operators, known.channels
        reply = cast(SnapshotRows, _SNAPSHOT.FromString(encoded))
        operators = self._operators.chunks(reply.operators)
        channels = self._channels.chunks(reply.channels)
        self._known = self._learn(encoded, operators, channels)
        return reply, operators, channels

    def _learn(self, encoded: bytes, operators: Sequence[bytes], channels: Sequence[bytes]) -> _KnownRows | None:
        """The rows just read, kept for the next replies when they were also the previous reply's
        (rows that change on every read are never worth it) and the reply begins with them."""
        if not (self._operators.repeated and self._channels.repeated):
            self._tried = False
            return None
        if self._tried:
            return None
        self._tried = True
        rows = _SNAPSHOT(operators=self._operators.last_rows, channels=self._channels.last_rows)
        prefix: bytes = rows.SerializeToString()
        return _KnownRows(prefix, operators, channels) if encoded.startswith(prefix) else None
