"""FrameParser's limits (line bytes, frame bytes, headers): kept at the limit, dropped past it, memory bounded."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidArgument
from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import wire


def test_overlong_line_is_dropped_and_counted() -> None:
    parser = FrameParser(max_line_bytes=64)
    frames = parser.feed(wire(("Event", "A"), ("Big", "x" * 100), ("After", "1")))
    assert frames[0].headers == (("Event", "A"), ("After", "1"))
    assert parser.malformed == {"line_too_long": 1}


def test_overlong_frame_is_skipped_to_the_next_boundary_with_bounded_memory() -> None:
    parser = FrameParser(max_frame_bytes=1000)
    assert parser.feed(b"Event: Huge\r\n") == []
    for _ in range(100):
        assert parser.feed(b"Filler: " + b"y" * 500 + b"\r\n") == []
        assert parser.pending_bytes <= 1000
    frames = parser.feed(b"\r\n" + wire(("Event", "Next")))
    assert [f.event for f in frames] == ["Next"]
    assert parser.malformed == {"frame_too_long": 1}


def test_every_bare_lf_frame_after_an_overlong_one_in_the_same_read_is_kept() -> None:
    parser = FrameParser(max_frame_bytes=1000)
    assert parser.feed(b"Event: Huge\n" + b"Filler: " + b"y" * 1500 + b"\n") == []
    frames = parser.feed(b"Tail: z\n\nEvent: A\n\nEvent: B\n\nEvent: C\n\n")
    assert [f.event for f in frames] == ["A", "B", "C"]
    assert parser.malformed == {"frame_too_long": 1}


def test_every_mixed_line_end_frame_after_an_overlong_one_in_the_same_read_is_kept() -> None:
    parser = FrameParser(max_frame_bytes=1000)
    assert parser.feed(b"Event: Huge\r\n" + b"Filler: " + b"y" * 1500 + b"\r\n") == []
    frames = parser.feed(b"\r\nEvent: A\n\nEvent: B\r\n\r\nEvent: C\n\r\n")
    assert [f.event for f in frames] == ["A", "B", "C"]


def test_complete_overlong_frame_in_one_read_is_dropped() -> None:
    parser = FrameParser(max_frame_bytes=200, max_line_bytes=200)
    frames = parser.feed(wire(*[("H", "z" * 50)] * 10) + wire(("Event", "Ok")))
    assert [f.event for f in frames] == ["Ok"]
    assert parser.malformed == {"frame_too_long": 1}


def test_too_many_headers_drop_the_frame() -> None:
    parser = FrameParser(max_headers=3)
    frames = parser.feed(wire(*[("H", "1")] * 4) + wire(("Event", "Ok")))
    assert [f.event for f in frames] == ["Ok"]
    assert parser.malformed == {"too_many_headers": 1}


def test_a_frame_of_exactly_max_headers_lines_is_kept() -> None:
    parser = FrameParser(max_headers=3)
    assert [f.headers for f in parser.feed(wire(("Event", "Ok"), ("A", "1"), ("B", "2")))] == [
        (("Event", "Ok"), ("A", "1"), ("B", "2"))
    ]
    assert not parser.malformed


@pytest.mark.parametrize("limit", ["max_line_bytes", "max_frame_bytes", "max_headers"])
def test_a_parser_needs_positive_limits(limit: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        FrameParser(**{limit: 0})  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.problem) == (
        "limits",
        "max_line_bytes, max_frame_bytes and max_headers must be > 0",
    )


def test_limits_of_one_are_valid() -> None:
    parser = FrameParser(max_line_bytes=1, max_frame_bytes=1, max_headers=1)
    assert (parser.max_line_bytes, parser.max_frame_bytes, parser.max_headers) == (1, 1, 1)


def test_the_default_limits_are_8_kib_lines_1_mib_frames_2048_headers() -> None:
    parser = FrameParser()
    assert (parser.max_line_bytes, parser.max_frame_bytes, parser.max_headers) == (8192, 1 << 20, 2048)


def test_a_line_of_exactly_max_line_bytes_is_kept() -> None:
    parser = FrameParser(max_line_bytes=12)
    frames = parser.feed(b"Event: A\r\nK: 123456789\r\nL: 1234567890\r\n\r\n")
    assert frames[0].headers == (("Event", "A"), ("K", "123456789"))
    assert parser.malformed == {"line_too_long": 1}


def test_a_frame_of_exactly_max_frame_bytes_is_kept() -> None:
    data = wire(("Event", "A"), ("X", "1"))
    exact_size = len(data) - 4  # the frame without its closing empty line
    parser = FrameParser(max_frame_bytes=exact_size, max_line_bytes=100)
    assert [f.event for f in parser.feed(data + wire(("Event", "B"), ("X", "12345")))] == ["A"]
    assert parser.malformed == {"frame_too_long": 1}


def test_a_partial_frame_of_exactly_max_frame_bytes_is_still_awaited() -> None:
    parser = FrameParser(max_frame_bytes=20)
    assert parser.feed(b"Event: A\r\nX: 1234567") == []
    assert parser.pending_bytes == 20
    assert [f.to_dict() for f in parser.feed(b"\r\n\r\n")] == [{"Event": "A", "X": "1234567"}]
    assert not parser.malformed


def test_a_partial_frame_past_max_frame_bytes_is_dropped_as_it_arrives() -> None:
    parser = FrameParser(max_frame_bytes=20)
    assert parser.feed(b"Event: A\r\nX: 12345678") == []
    assert parser.pending_bytes <= 2
    assert parser.malformed == {"frame_too_long": 1}


def test_while_an_overlong_frame_is_skipped_only_two_bytes_are_kept_between_reads() -> None:
    parser = FrameParser(max_frame_bytes=20)
    parser.feed(b"Event: A\r\nX: " + b"y" * 40)
    parser.feed(b"y" * 50)
    assert parser.pending_bytes == 2


def test_a_boundary_split_as_lf_then_crlf_across_reads_ends_the_skip() -> None:
    parser = FrameParser(max_frame_bytes=20)
    parser.feed(b"Event: A\r\nX: " + b"y" * 40)
    assert parser.feed(b"yyy\n\r") == []
    assert [f.event for f in parser.feed(b"\nEvent: B\r\n\r\n")] == ["B"]
    assert parser.malformed == {"frame_too_long": 1}


def test_a_bare_lf_frame_of_exactly_max_frame_bytes_is_kept() -> None:
    parser = FrameParser(max_frame_bytes=len(b"Event: A\nX: 1"), max_line_bytes=100)
    assert [f.to_dict() for f in parser.feed(b"Event: A\nX: 1\n\n")] == [{"Event": "A", "X": "1"}]
    assert not parser.malformed


def test_a_bare_lf_frame_of_exactly_max_headers_lines_is_kept() -> None:
    parser = FrameParser(max_headers=2)
    assert [f.to_dict() for f in parser.feed(b"Event: A\nX: 1\n\n")] == [{"Event": "A", "X": "1"}]
    assert not parser.malformed


def test_every_overlong_partial_frame_is_counted() -> None:
    parser = FrameParser(max_frame_bytes=20)
    parser.feed(b"Event: A\r\nX: " + b"y" * 40)
    parser.feed(b"\r\n\r\n")
    parser.feed(b"Event: B\r\nX: " + b"y" * 40)
    assert parser.malformed == {"frame_too_long": 2}
