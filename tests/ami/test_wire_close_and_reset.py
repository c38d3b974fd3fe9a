"""The end of a connection: finish() counts a truncated frame, reset() forgets the stream but keeps the counters."""

from __future__ import annotations

import pytest

from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import BANNER, wire


def test_truncated_frame_at_close_counts_as_truncated() -> None:
    parser = FrameParser()
    parser.feed(wire(("Event", "A")) + b"Event: B\r\nChan")
    parser.finish()
    assert parser.malformed == {"truncated": 1}
    assert parser.pending_bytes == 0


def test_clean_close_counts_nothing() -> None:
    parser = FrameParser()
    parser.feed(BANNER + wire(("Event", "A")))
    parser.finish()
    assert not parser.malformed


def test_reset_forgets_banner_and_partial_frame() -> None:
    parser = FrameParser()
    parser.feed(BANNER + b"Event: half")
    parser.reset()
    assert parser.banner is None
    assert parser.pending_bytes == 0
    assert parser.feed(BANNER + wire(("Event", "New")))[0].event == "New"


def test_only_line_ends_left_at_close_are_not_a_truncated_frame() -> None:
    parser = FrameParser()
    parser.feed(wire(("Event", "A")))
    parser.feed(b"\r\n")
    parser.finish()
    assert not parser.malformed


def test_an_overlong_frame_being_skipped_at_close_is_not_counted_again() -> None:
    parser = FrameParser(max_frame_bytes=20)
    parser.feed(b"Event: A\r\nX: " + b"y" * 40)
    parser.finish()
    assert parser.malformed == {"frame_too_long": 1}
    assert parser.feed(wire(("Event", "B")))[0].event == "B"


def test_counters_survive_reset() -> None:
    parser = FrameParser()
    parser.feed(BANNER + b"junk\r\nEvent: A\r\n\r\n")
    parser.reset()
    assert parser.malformed == {"no_colon": 1}


def test_a_new_parser_holds_nothing_and_closes_clean() -> None:
    parser = FrameParser()
    assert parser.pending_bytes == 0
    parser.finish()
    assert not parser.malformed


@pytest.mark.parametrize("tail", [b"  ", b"X"])
def test_any_byte_but_line_ends_left_at_close_is_a_truncated_frame(tail: bytes) -> None:
    parser = FrameParser()
    parser.feed(wire(("Event", "A")) + tail)
    parser.finish()
    assert parser.malformed == {"truncated": 1}


def test_every_truncated_frame_is_counted_across_connections() -> None:
    parser = FrameParser()
    for _ in range(2):
        parser.feed(b"Event: B\r\nChan")
        parser.finish()
        parser.reset()
    assert parser.malformed == {"truncated": 2}
