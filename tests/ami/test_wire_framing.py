"""FrameParser splits the stream into frames at the empty line, whatever the line ends and wherever a read ends."""

from __future__ import annotations

import pytest

from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import BANNER, LOGIN_OK, wire


def test_crlf_frames_are_split_at_the_empty_line() -> None:
    data = BANNER + wire(("Event", "A")) + wire(("Event", "B"), ("X", "1"))
    frames = FrameParser().feed(data)
    assert [f.headers for f in frames] == [(("Event", "A"),), (("Event", "B"), ("X", "1"))]


def test_bare_lf_line_ends_are_accepted() -> None:
    frames = FrameParser().feed(b"Event: A\nX: 1\n\nEvent: B\n\n")
    assert [f.to_dict() for f in frames] == [{"Event": "A", "X": "1"}, {"Event": "B"}]


def test_mixed_line_ends_in_one_frame() -> None:
    frames = FrameParser().feed(b"Event: A\nX: 1\r\n\r\nEvent: B\r\n\n")
    assert [f.event for f in frames] == ["A", "B"]


def test_partial_frame_is_kept_until_its_end_arrives() -> None:
    parser = FrameParser()
    assert parser.feed(b"Event: A\r\nX: 1\r") == []
    assert parser.pending_bytes > 0
    frames = parser.feed(b"\n\r\n")
    assert frames[0].to_dict() == {"Event": "A", "X": "1"}


def test_every_split_point_gives_the_same_frames() -> None:
    data = BANNER + LOGIN_OK + wire(("Event", "Hangup"), ("Channel", "PJSIP/1-1"), ("Cause", "16"))
    whole = FrameParser().feed(data)
    for cut in range(len(data) + 1):
        parser = FrameParser()
        assert parser.feed(data[:cut]) + parser.feed(data[cut:]) == whole, cut


@pytest.mark.parametrize("ends", [b"\n\n", b"\n\r\n"])
def test_line_ends_after_a_frame_are_not_held_as_a_partial_frame(ends: bytes) -> None:
    parser = FrameParser()
    assert [f.event for f in parser.feed(wire(("Event", "A")) + ends + b"Event: B\n")] == ["A"]
    assert parser.pending_bytes == len(b"Event: B\n")


def test_a_frame_after_a_lf_crlf_boundary_keeps_its_first_byte_across_reads() -> None:
    parser = FrameParser()
    assert [f.event for f in parser.feed(b"Event: A\n\r\nEvent: B")] == ["A"]
    assert [f.to_dict() for f in parser.feed(b"\r\n\r\n")] == [{"Event": "B"}]


def test_extra_blank_lines_between_bare_lf_frames_are_not_malformed() -> None:
    parser = FrameParser()
    assert [f.event for f in parser.feed(b"Event: A\n\n\n\nEvent: B\n\n")] == ["A", "B"]
    assert not parser.malformed
