"""The AMI banner (`Asterisk Call Manager/...`): the first line of a connection, read whole, never a frame."""

from __future__ import annotations

import pytest

from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import BANNER, LOGIN_OK, wire


def test_banner_is_the_first_line_and_not_a_frame() -> None:
    parser = FrameParser()
    frames = parser.feed(BANNER + LOGIN_OK)
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert [f.response for f in frames] == ["Success"]


def test_stream_without_banner_starts_with_a_frame() -> None:
    parser = FrameParser()
    assert parser.feed(LOGIN_OK)[0].action_id == "1"
    assert parser.banner is None


def test_blank_lines_before_the_banner_are_skipped() -> None:
    parser = FrameParser()
    frames = parser.feed(b"\r\n\r\n" + BANNER + wire(("Event", "X")))
    assert (parser.banner, [f.event for f in frames]) == ("Asterisk Call Manager/11.0.0", ["X"])


def test_a_banner_split_across_reads_is_read_whole() -> None:
    parser = FrameParser()
    assert parser.feed(b"Asterisk Call") == []
    assert parser.feed(b" Manager/2.10.4\r\n" + wire(("Event", "X")))[0].event == "X"
    assert parser.banner == "Asterisk Call Manager/2.10.4"


def test_a_first_line_longer_than_a_line_is_not_waited_for_as_a_banner() -> None:
    parser = FrameParser(max_line_bytes=16)
    assert parser.feed(b"Event: " + b"x" * 20) == []
    assert parser.banner is None
    assert [f.event for f in parser.feed(b"\r\n\r\n" + wire(("Event", "Next")))] == ["Next"]
    assert parser.malformed == {"line_too_long": 1, "no_headers": 1}  # the long line was parsed, not lost


def test_the_banner_of_a_new_connection_is_read_after_reset() -> None:
    parser = FrameParser()
    parser.feed(BANNER)
    parser.reset()
    parser.feed(b"Asterisk Call Manager/9.0.0\r\n")
    assert parser.banner == "Asterisk Call Manager/9.0.0"


def test_invalid_utf8_in_the_banner_is_replaced() -> None:
    parser = FrameParser()
    parser.feed(b"Asterisk Call Manager/\xff\r\n")
    assert parser.banner == "Asterisk Call Manager/\ufffd"


def test_a_bare_lf_banner_costs_the_first_frame_nothing() -> None:
    parser = FrameParser()
    frames = parser.feed(b"Asterisk Call Manager/11.0.0\nEvent: A\n\n")
    assert (parser.banner, [f.headers for f in frames]) == ("Asterisk Call Manager/11.0.0", [(("Event", "A"),)])
    assert not parser.malformed


@pytest.mark.parametrize("prefix", [b" ", b"X"])
def test_a_stream_without_banner_keeps_its_first_key_whole(prefix: bytes) -> None:
    frames = FrameParser().feed(prefix + b"Event: A\r\n\r\n")
    assert [f.headers for f in frames] == [((prefix.decode() + "Event", "A"),)]


def test_a_banner_of_exactly_max_line_bytes_is_still_awaited() -> None:
    parser = FrameParser(max_line_bytes=16)
    assert parser.feed(b"x" * 16) == []
    assert [f.event for f in parser.feed(b"\r\n" + wire(("Event", "X")))] == ["X"]
    assert parser.banner == "x" * 16
