"""Live AMI events as the client hands them on: one :class:`EventBatch` per socket read.

A busy feed brings hundreds of events per read. Building one :class:`AmiEvent` per event (and
taking it apart again in the consumer) was Python work per event that the in-process parse +
normalize + apply path does not have; a batch keeps the read's frames as the parser returned them,
beside their sequence numbers (a ``range`` when they are consecutive: no object per event).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from services.ami_ingest.ami.frame import Frame

__all__ = ["AmiEvent", "EventBatch"]


class AmiEvent(NamedTuple):
    """A live event (not an answer to us), in wire order."""

    seq: int
    connection: int
    frame: Frame

    @property
    def name(self) -> str | None:
        return self.frame.event


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Live events of one connection in wire order: ``frames[i]`` is numbered ``seqs[i]``."""

    connection: int
    seqs: Sequence[int]
    """Ascending; a ``range`` when the read held nothing but live events."""
    frames: Sequence[Frame]

    @classmethod
    def of(cls, events: Sequence[AmiEvent]) -> EventBatch:
        """A batch of ``events`` (of one connection, in wire order): for fakes and tests."""
        connection = events[0].connection if events else 0
        return cls(connection, [event.seq for event in events], [event.frame for event in events])

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[AmiEvent]:
        connection = self.connection
        return (AmiEvent(seq, connection, frame) for seq, frame in zip(self.seqs, self.frames, strict=True))

    @property
    def last_seq(self) -> int:
        return self.seqs[-1]

    def split_after(self, seq: int) -> tuple[EventBatch, EventBatch]:
        """The events numbered up to ``seq``, and the rest."""
        cut = bisect_right(self.seqs, seq)
        return (
            EventBatch(self.connection, self.seqs[:cut], self.frames[:cut]),
            EventBatch(self.connection, self.seqs[cut:], self.frames[cut:]),
        )
