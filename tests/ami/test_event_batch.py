"""A socket read's live events as one EventBatch: frames beside their sequence numbers."""

from __future__ import annotations

from services.ami_ingest.ami.batch import AmiEvent, EventBatch
from services.ami_ingest.ami.frame import Frame


def frames(*names: str) -> list[Frame]:
    return [Frame((("Event", name),)) for name in names]


def test_iterating_a_batch_gives_its_events_numbered_in_wire_order() -> None:
    a, b = frames("A", "B")
    batch = EventBatch(3, range(10, 12), [a, b])

    assert list(batch) == [AmiEvent(10, 3, a), AmiEvent(11, 3, b)]
    assert len(batch) == 2
    assert batch.last_seq == 11


def test_split_after_a_number_keeps_the_events_up_to_it_apart_from_the_rest() -> None:
    batch = EventBatch(1, [4, 7, 9], frames("A", "B", "C"))

    before, after = batch.split_after(7)

    assert [event.seq for event in before] == [4, 7]
    assert [(event.seq, event.name) for event in after] == [(9, "C")]


def test_a_batch_of_events_keeps_their_numbers_and_connection() -> None:
    events = [AmiEvent(5, 2, frame) for frame in frames("A")]

    assert list(EventBatch.of(events)) == events
