"""A frame's headers: order, repeats, case, text decoding, the first colon as separator, lazy splitting."""

from __future__ import annotations

import pytest

from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import wire


def test_repeated_headers_are_kept_in_order() -> None:
    data = wire(("Event", "Status"), ("ChanVariable", "A=1"), ("ChanVariable", "B=2"))
    only = FrameParser().feed(data)[0]
    assert only.get_all("chanvariable") == ["A=1", "B=2"]
    assert only.get("ChanVariable") == "A=1"
    assert only.to_dict()["ChanVariable"] == "A=1"


def test_header_lookup_is_case_insensitive() -> None:
    only = FrameParser().feed(wire(("UniqueID", "1.2")))[0]
    assert only.get("uniqueid") == "1.2"
    assert only.get("missing", "x") == "x"


def test_utf8_values_are_decoded() -> None:
    only = FrameParser().feed(wire(("MemberName", "Ольга Иванова")))[0]
    assert only.get("MemberName") == "Ольга Иванова"


@pytest.mark.parametrize("lazy", [False, True])
def test_invalid_utf8_is_replaced_not_fatal(lazy: bool) -> None:
    only = FrameParser(lazy_headers=lazy).feed(b"CallerIDName: \xff\xfeBob\r\n\r\n")[0]
    assert only.get("CallerIDName") == "\ufffd\ufffdBob"


def test_value_keeps_colons_after_the_first_separator() -> None:
    only = FrameParser().feed(wire(("Note", "a: b: c"), ("Device", "Custom:agent1")))[0]
    assert only.to_dict() == {"Note": "a: b: c", "Device": "Custom:agent1"}


def test_colon_without_space_separates_too() -> None:
    assert FrameParser().feed(b"Key:value\r\nEmpty:\r\n\r\n")[0].headers == (("Key", "value"), ("Empty", ""))


def test_empty_value_is_an_empty_string() -> None:
    assert FrameParser().feed(wire(("PausedReason", "")))[0].get("PausedReason") == ""


def test_a_lazy_frame_not_opening_with_its_event_finds_it_further_down() -> None:
    data = wire(("Response", "Success")) + wire(("Uniqueid", "1.2"), ("Event", "Late"))
    frames = FrameParser(lazy_headers=True).feed(data)
    assert [f.event for f in frames] == [None, "Late"]
    assert frames[0].response == "Success"


def test_a_lazy_event_name_is_read_without_splitting_the_frame() -> None:
    only = FrameParser(lazy_headers=True).feed(wire(("Event", "VarSet"), ("Variable", "x")))[0]
    assert only.event == "VarSet"
    assert only._flat is None  # the headers are still unsplit text
    assert only.to_dict() == {"Event": "VarSet", "Variable": "x"}


def test_a_lazy_frame_of_one_event_line_has_that_name() -> None:
    assert [f.event for f in FrameParser(lazy_headers=True).feed(wire(("Event", "Ping")) * 2)] == ["Ping", "Ping"]


def test_a_parser_splits_headers_up_front_unless_asked_for_lazy_headers() -> None:
    eager = FrameParser().feed(wire(("Event", "VarSet"), ("Variable", "x")))[0]
    lazy = FrameParser(lazy_headers=True).feed(wire(("Event", "VarSet"), ("Variable", "x")))[0]
    assert (eager._flat is not None, lazy._flat is None) == (True, True)  # split as made / on first use
    assert eager.flat == lazy.flat == ("Event", "VarSet", "Variable", "x")


def test_invalid_utf8_in_a_bare_lf_frame_is_replaced_not_fatal() -> None:
    only = FrameParser().feed(b"Event: Newchannel\nCallerIDName: \xff\xfeBob\n\n")[0]
    assert only.get("CallerIDName") == "\ufffd\ufffdBob"


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (b" Event: A\n\n", ((" Event", "A"),)),
        (b"XKey: v\n\n", (("XKey", "v"),)),
        (b"Key:a:b\n\n", (("Key", "a:b"),)),
    ],
)
def test_a_bare_lf_line_is_split_at_its_first_colon_and_keeps_its_key_whole(
    data: bytes, headers: tuple[tuple[str, str], ...]
) -> None:
    parser = FrameParser()
    assert [f.headers for f in parser.feed(data)] == [headers]
    assert not parser.malformed
