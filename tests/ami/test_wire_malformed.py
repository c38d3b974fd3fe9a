"""Malformed input is dropped and counted (FrameParser.malformed) while the rest of the frame and stream survive."""

from __future__ import annotations

import pytest

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import BANNER, wire


def test_line_without_colon_is_dropped_and_counted_frame_survives() -> None:
    parser = FrameParser()
    frames = parser.feed(b"Event: A\r\ngarbage line\r\nMessage: a: b\r\n\r\n")
    assert frames[0].headers == (("Event", "A"), ("Message", "a: b"))
    assert parser.malformed == {"no_colon": 1}


def test_each_line_without_colon_is_counted_once() -> None:
    parser = FrameParser()
    frames = parser.feed(b"Event: A\r\njunk one\r\nX: 1\r\njunk two\r\n\r\nEvent: B\njunk three\n\n")
    assert [f.headers for f in frames] == [(("Event", "A"), ("X", "1")), (("Event", "B"),)]
    assert parser.malformed == {"no_colon": 3}


def test_line_without_colon_between_clean_frames_is_not_taken_for_a_frame_boundary() -> None:
    parser = FrameParser()
    frames = parser.feed(BANNER + b"A: 1\r\n\r\nB: 2\r\njunk\r\nC: 3\r\n\r\nD: 4\r\n\r\n")
    assert [f.headers for f in frames] == [(("A", "1"),), (("B", "2"), ("C", "3")), (("D", "4"),)]
    assert parser.malformed == {"no_colon": 1}


def test_frame_of_only_junk_is_dropped_and_counted() -> None:
    parser = FrameParser()
    assert parser.feed(BANNER + b"just words\r\n\r\n" + wire(("Event", "B"))) == [Frame((("Event", "B"),))]
    assert parser.malformed == {"no_colon": 1, "no_headers": 1}


def test_empty_key_is_dropped_and_counted() -> None:
    parser = FrameParser()
    assert parser.feed(b"Event: A\r\n: orphan\r\n\r\n")[0].headers == (("Event", "A"),)
    assert parser.malformed == {"empty_key": 1}


def test_headers_after_an_empty_key_line_survive() -> None:
    parser = FrameParser()
    frames = parser.feed(b"Event: A\r\n: orphan\r\nAfter: 1\r\n:also orphaned\r\nLast: 2\r\n\r\n")
    assert frames[0].headers == (("Event", "A"), ("After", "1"), ("Last", "2"))
    assert parser.malformed == {"empty_key": 2}


def test_binary_garbage_frame_is_dropped_and_the_stream_continues() -> None:
    parser = FrameParser()
    frames = parser.feed(b"\x00\x01\x02binary\x00: \xff\r\n\r\n" + wire(("Event", "After")))
    assert [f.event for f in frames] == ["After"]
    assert parser.malformed == {"binary": 1}


def test_a_frame_holding_a_nul_byte_is_dropped_whole() -> None:
    parser = FrameParser()
    frames = parser.feed(
        wire(("Event", "Before")) + b"Event: Hangup\r\nChannel: PJSIP/1\x00\r\n\r\n" + wire(("Event", "After"))
    )
    assert [f.event for f in frames] == ["Before", "After"]
    assert parser.malformed == {"binary": 1}


def test_every_malformed_frame_is_counted_not_just_the_first_of_its_kind() -> None:
    parser = FrameParser(max_frame_bytes=40, max_headers=3)
    nul = b"Event: Hangup\r\nChannel: PJSIP/1\x00\r\n\r\n"
    crowded = wire(*[("H", "1")] * 4)
    long = wire(("Event", "Long"), ("Filler", "z" * 40))
    frames = parser.feed(nul + nul + crowded + crowded + long + long + wire(("Event", "Ok")))
    assert [f.event for f in frames] == ["Ok"]
    assert parser.malformed == {"binary": 2, "too_many_headers": 2, "frame_too_long": 2}


@pytest.mark.parametrize("lazy", [False, True])
def test_an_empty_key_on_the_first_line_of_a_read_is_dropped_and_counted(lazy: bool) -> None:
    parser = FrameParser(lazy_headers=lazy)
    parser.feed(BANNER)
    frames = parser.feed(b": orphan\r\nEvent: A\r\n\r\n")
    assert [f.headers for f in frames] == [(("Event", "A"),)]
    assert parser.malformed == {"empty_key": 1}


@pytest.mark.parametrize("lazy", [False, True])
def test_bytes_that_spell_the_fast_paths_marker_are_never_taken_for_a_separator(lazy: bool) -> None:
    parser = FrameParser(lazy_headers=lazy)
    frames = parser.feed(b"Event: A\r\nX\x01\x01Y\r\n\r\n")
    assert [f.headers for f in frames] == [(("Event", "A"),)]
    assert parser.malformed == {"no_colon": 1}


def test_every_overlong_line_and_headerless_frame_is_counted() -> None:
    parser = FrameParser(max_line_bytes=20)
    frames = parser.feed(wire(("Event", "A"), ("Big", "z" * 30), ("Big", "z" * 30)) + b"junk\r\n\r\njunk\r\n\r\n")
    assert [f.headers for f in frames] == [(("Event", "A"),)]
    assert parser.malformed == {"line_too_long": 2, "no_colon": 2, "no_headers": 2}
