"""FrameParser / Frame / encode_action: the AMI wire format, one behaviour a test."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from runtime.errors import InvalidArgument
from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser, encode_action
from tests.ami.harness import wire

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LOGIN_OK = wire(("Response", "Success"), ("ActionID", "1"), ("Message", "Authentication accepted"))


def test_banner_is_the_first_line_and_not_a_frame() -> None:
    parser = FrameParser()
    frames = parser.feed(BANNER + LOGIN_OK)
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert [f.response for f in frames] == ["Success"]


def test_stream_without_banner_starts_with_a_frame() -> None:
    parser = FrameParser()
    assert parser.feed(LOGIN_OK)[0].action_id == "1"
    assert parser.banner is None


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


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    only = FrameParser().feed(b"CallerIDName: \xff\xfeBob\r\n\r\n")[0]
    assert only.get("CallerIDName") == "\ufffd\ufffdBob"


def test_value_keeps_colons_after_the_first_separator() -> None:
    only = FrameParser().feed(wire(("Note", "a: b: c"), ("Device", "Custom:agent1")))[0]
    assert only.to_dict() == {"Note": "a: b: c", "Device": "Custom:agent1"}


def test_colon_without_space_separates_too() -> None:
    assert FrameParser().feed(b"Key:value\r\nEmpty:\r\n\r\n")[0].headers == (("Key", "value"), ("Empty", ""))


def test_empty_value_is_an_empty_string() -> None:
    assert FrameParser().feed(wire(("PausedReason", "")))[0].get("PausedReason") == ""


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


def test_old_response_follows_keeps_command_output_as_output_headers() -> None:
    data = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n"
        b"Channel              Location\nPJSIP/1-0  s@default:1\n\nsecond: para\n--END COMMAND--\r\n\r\n"
    ) + wire(("Event", "After"))
    frames = FrameParser().feed(data)
    assert frames[0].action_id == "7"
    assert frames[0].get_all("Output") == [
        "Channel              Location",
        "PJSIP/1-0  s@default:1",
        "",
        "second: para",
    ]
    assert frames[1].event == "After"


def test_old_response_follows_split_across_reads() -> None:
    data = b"Response: Follows\r\nActionID: 8\r\nline one\n\nline two\n--END COMMAND--\r\n\r\n"
    parser = FrameParser()
    out = []
    for byte in range(len(data)):
        out += parser.feed(data[byte : byte + 1])
    assert out[0].get_all("Output") == ["line one", "", "line two"]


def test_response_follows_without_end_marker_does_not_swallow_the_next_frame() -> None:
    data = BANNER + b"Response: Follows\r\n\r\n" + wire(("Event", "Sentinel"), ("X", "1"))
    frames = FrameParser().feed(data)
    assert frames[-1] == Frame((("Event", "Sentinel"), ("X", "1")))


def test_asterisk_22_command_output_headers_stay_repeated() -> None:
    data = wire(("Response", "Success"), ("Message", "Command output follows"), ("Output", "a"), ("Output", ""))
    assert FrameParser().feed(data)[0].get_all("output") == ["a", ""]


def test_frame_properties_read_event_response_and_action_id() -> None:
    only = Frame((("Event", "X"), ("ActionID", "9")))
    assert (only.event, only.response, only.action_id) == ("X", None, "9")


def test_encode_action_writes_crlf_frame() -> None:
    data = encode_action("Login", {"Username": "u", "Secret": "s"})
    assert data == b"Action: Login\r\nUsername: u\r\nSecret: s\r\n\r\n"


def test_encode_action_accepts_pairs_with_repeated_keys() -> None:
    data = encode_action("Originate", [("Variable", "A=1"), ("Variable", "B=2")])
    assert data.count(b"Variable: ") == 2


@pytest.mark.parametrize("bad", ["a\r\nAction: Logoff", "x\ny", "x\r", "x\x00y"])
def test_encode_action_rejects_cr_lf_or_nul_in_values(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode_action("Ping", {"ActionID": bad})
    assert caught.value.field == "ActionID"


@pytest.mark.parametrize("bad", ["Ping\x00", "Ping\r\nX: 1", "Ping\n"])
def test_encode_action_rejects_cr_lf_or_nul_in_the_action_name(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode_action(bad)
    assert caught.value.field == "Action"


def test_encode_action_rejects_nul_in_a_header_name() -> None:
    with pytest.raises(InvalidArgument):
        encode_action("Ping", {"Action\x00ID": "1"})


def test_encode_action_rejects_bad_header_names() -> None:
    with pytest.raises(InvalidArgument):
        encode_action("Ping", {"Bad:Name": "1"})
    with pytest.raises(InvalidArgument):
        encode_action("", {})


def test_frame_is_immutable() -> None:
    only = Frame((("Event", "X"),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        only.headers = ()  # type: ignore[misc]


def test_frame_from_flat_equals_frame_from_pairs() -> None:
    assert Frame.from_flat(("Event", "X", "A", "1")) == Frame((("Event", "X"), ("A", "1")))
    assert Frame.from_flat(("Event", "X")).headers == (("Event", "X"),)


def test_frame_from_flat_rejects_odd_length() -> None:
    with pytest.raises(ValueError, match="even"):
        Frame.from_flat(("Event",))


def test_frame_get_skips_values_spelled_like_the_key() -> None:
    only = Frame((("Note", "Event"), ("Event", "Real")))
    assert only.get("Event") == "Real"


def test_frame_survives_pickling_and_hashing() -> None:
    only = FrameParser().feed(wire(("Event", "X"), ("A", "é")))[0]
    assert pickle.loads(pickle.dumps(only)) == only
    assert len({only, Frame((("Event", "X"), ("A", "é")))}) == 1
