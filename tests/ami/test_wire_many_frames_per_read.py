"""A read holding many frames (the parser's fast path): every frame kept, an odd one parsed and counted on its own."""

from __future__ import annotations

import pytest

from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import BANNER, wire


def test_many_frames_in_one_read_are_all_kept_whatever_the_line_limit() -> None:
    data = b"".join(wire(("Event", f"E{i}"), ("Uniqueid", f"1700000000.{i}")) for i in range(50))
    frames = FrameParser(max_line_bytes=40).feed(data)
    assert [f.event for f in frames] == [f"E{i}" for i in range(50)]


def test_a_frame_longer_than_the_line_limit_among_short_ones_is_parsed_on_its_own() -> None:
    long_frame = wire(*[("H", "1234567")] * 6)
    data = wire(("Event", "A")) + long_frame + wire(("Event", "B"))
    frames = FrameParser(max_line_bytes=40).feed(data)
    assert [f.headers for f in frames] == [(("Event", "A"),), (("H", "1234567"),) * 6, (("Event", "B"),)]


def _clean_frames(count: int, start: int = 0) -> bytes:
    return b"".join(wire(("Event", f"E{i}"), ("Uniqueid", f"1764672000.{i}")) for i in range(start, start + count))


@pytest.mark.parametrize("where", [0, 17, 39])
@pytest.mark.parametrize("lazy", [False, True])
def test_one_odd_frame_in_a_read_costs_no_other_frame_its_headers(where: int, lazy: bool) -> None:
    odd = b"Event: Odd\r\nNote:no space\r\nMessage: a: b\r\n\r\n"
    data = _clean_frames(where) + odd + _clean_frames(39 - where, start=where)
    parser = FrameParser(lazy_headers=lazy)
    frames = parser.feed(BANNER + data)
    expected: list[tuple[tuple[str, str], ...]] = [
        (("Event", f"E{i}"), ("Uniqueid", f"1764672000.{i}")) for i in range(39)
    ]
    expected.insert(where, (("Event", "Odd"), ("Note", "no space"), ("Message", "a: b")))
    assert [f.headers for f in frames] == expected
    assert not parser.malformed


@pytest.mark.parametrize("lazy", [False, True])
def test_odd_frames_everywhere_in_a_read_are_each_parsed_and_counted(lazy: bool) -> None:
    data = b"".join(_clean_frames(3, start=i) + b"Event: Junk\r\njunk line\r\n\r\n" for i in range(0, 30, 3))
    parser = FrameParser(lazy_headers=lazy)
    frames = parser.feed(data)
    assert [f.event for f in frames].count("Junk") == 10
    assert len(frames) == 40
    assert parser.malformed == {"no_colon": 10}


def test_a_frame_longer_than_the_line_limit_is_checked_line_by_line_whatever_its_neighbours() -> None:
    parser = FrameParser(max_line_bytes=30)
    data = _clean_frames(5) + wire(("Event", "Long"), ("Big", "z" * 40)) + _clean_frames(5, start=5)
    frames = parser.feed(data)
    assert [f.event for f in frames] == [*(f"E{i}" for i in range(5)), "Long", *(f"E{i}" for i in range(5, 10))]
    assert frames[5].headers == (("Event", "Long"),)
    assert parser.malformed == {"line_too_long": 1}
