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
    assert (caught.value.field, caught.value.problem) == ("ActionID", "must not contain CR, LF or NUL")


@pytest.mark.parametrize("bad", ["Ping\x00", "Ping\r\nX: 1", "Ping\n"])
def test_encode_action_rejects_cr_lf_or_nul_in_the_action_name(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode_action(bad)
    assert caught.value.field == "Action"


def test_encode_action_rejects_nul_in_a_header_name() -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode_action("Ping", {"Action\x00ID": "1"})
    assert (caught.value.field, caught.value.problem) == ("Action\x00ID", "must not contain CR, LF or NUL")


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


def test_many_frames_in_one_read_are_all_kept_whatever_the_line_limit() -> None:
    data = b"".join(wire(("Event", f"E{i}"), ("Uniqueid", f"1700000000.{i}")) for i in range(50))
    frames = FrameParser(max_line_bytes=40).feed(data)
    assert [f.event for f in frames] == [f"E{i}" for i in range(50)]


def test_a_frame_longer_than_the_line_limit_among_short_ones_is_parsed_on_its_own() -> None:
    long_frame = wire(*[("H", "1234567")] * 6)
    data = wire(("Event", "A")) + long_frame + wire(("Event", "B"))
    frames = FrameParser(max_line_bytes=40).feed(data)
    assert [f.headers for f in frames] == [(("Event", "A"),), (("H", "1234567"),) * 6, (("Event", "B"),)]


def test_command_output_lines_lose_their_carriage_returns() -> None:
    data = b"Response: Follows\r\nActionID: 9\r\nline one\r\nline two\r\n--END COMMAND--\r\n\r\n"
    assert FrameParser().feed(data)[0].get_all("Output") == ["line one", "line two"]


def test_command_output_may_end_on_the_marker_line() -> None:
    data = b"Response: Follows\r\nPrivilege: Command\r\nlast line--END COMMAND--\r\n\r\n"
    only = FrameParser().feed(data)[0]
    assert only.headers == (("Response", "Follows"), ("Privilege", "Command"), ("Output", "last line"))


def test_command_output_headers_keep_their_values_whatever_the_spacing() -> None:
    data = b"Response: Follows\r\nActionID:7\r\nMessage:  two spaces\r\nout\r\n--END COMMAND--\r\n\r\n"
    only = FrameParser().feed(data)[0]
    assert only.headers == (("Response", "Follows"), ("ActionID", "7"), ("Message", " two spaces"), ("Output", "out"))


def test_command_output_without_output_lines_is_its_headers() -> None:
    data = b"Response: Follows\r\nActionID: 3\r\n--END COMMAND--\r\n\r\n"
    assert FrameParser().feed(data)[0].headers == (("Response", "Follows"), ("ActionID", "3"))


def test_encode_action_writes_values_as_text() -> None:
    timeout: dict[str, object] = {"Timeout": 30000}
    assert encode_action("Originate", timeout) == b"Action: Originate\r\nTimeout: 30000\r\n\r\n"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "field"), [("", "header"), (" Padded", " Padded"), ("Padded ", "Padded "), ("A:B", "A:B")]
)
def test_encode_action_refuses_empty_padded_or_colon_header_names_naming_them(name: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode_action("Ping", {name: "1"})
    assert (caught.value.field, caught.value.problem) == (field, "header name must be non-empty, without ':' or spaces")


def test_encode_action_refuses_text_utf8_cannot_encode() -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode_action("Ping", {"ActionID": "\udc80"})
    assert (caught.value.field, caught.value.problem) == ("headers", "must be valid Unicode text (no lone surrogates)")


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


def test_a_frame_longer_than_the_line_limit_is_checked_line_by_line_whatever_its_neighbours() -> None:
    parser = FrameParser(max_line_bytes=30)
    data = _clean_frames(5) + wire(("Event", "Long"), ("Big", "z" * 40)) + _clean_frames(5, start=5)
    frames = parser.feed(data)
    assert [f.event for f in frames] == [*(f"E{i}" for i in range(5)), "Long", *(f"E{i}" for i in range(5, 10))]
    assert frames[5].headers == (("Event", "Long"),)
    assert parser.malformed == {"line_too_long": 1}


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


@pytest.mark.parametrize("ends", [b"\n\n", b"\n\r\n"])
def test_line_ends_after_a_frame_are_not_held_as_a_partial_frame(ends: bytes) -> None:
    parser = FrameParser()
    assert [f.event for f in parser.feed(wire(("Event", "A")) + ends + b"Event: B\n")] == ["A"]
    assert parser.pending_bytes == len(b"Event: B\n")


def test_a_frame_after_a_lf_crlf_boundary_keeps_its_first_byte_across_reads() -> None:
    parser = FrameParser()
    assert [f.event for f in parser.feed(b"Event: A\n\r\nEvent: B")] == ["A"]
    assert [f.to_dict() for f in parser.feed(b"\r\n\r\n")] == [{"Event": "B"}]


def test_command_output_that_looks_like_a_header_stays_output() -> None:
    data = (
        b"Response: Follows\r\nPrivilege: Command\r\nMessage: see: below\r\n"
        b"System uptime: 1 day\r\n--END COMMAND--\r\n\r\n"
    )
    assert FrameParser().feed(data)[0].headers == (
        ("Response", "Follows"),
        ("Privilege", "Command"),
        ("Message", "see: below"),
        ("Output", "System uptime: 1 day"),
    )


def test_command_output_lines_keep_trailing_spaces_and_letters_and_lose_a_stray_carriage_return() -> None:
    data = b"Response: Follows\r\nActionID: 9\r\nspaced   \r\r\nends in X\r\r\n--END COMMAND--\r\n\r\n"
    assert FrameParser().feed(data)[0].get_all("Output") == ["spaced   ", "ends in X"]


def test_only_the_last_end_marker_on_the_last_line_ends_command_output() -> None:
    data = b"Response: Follows\r\nActionID: 9\r\nx--END COMMAND----END COMMAND--\r\n\r\n"
    assert FrameParser().feed(data)[0].get_all("Output") == ["x--END COMMAND--"]


def test_a_command_response_of_only_headers_has_no_output() -> None:
    data = b"Response: Follows\r\nActionID: 4\r\n\r\n" + wire(("Event", "Next"))
    frames = FrameParser().feed(BANNER + data)
    assert [f.headers for f in frames] == [(("Response", "Follows"), ("ActionID", "4")), (("Event", "Next"),)]


def test_encode_action_names_an_empty_action_as_the_problem() -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode_action("")
    assert (caught.value.field, caught.value.problem) == ("Action", "must not be empty")


def test_a_new_parser_holds_nothing_and_closes_clean() -> None:
    parser = FrameParser()
    assert parser.pending_bytes == 0
    parser.finish()
    assert not parser.malformed


def test_a_parser_splits_headers_up_front_unless_asked_for_lazy_headers() -> None:
    eager = FrameParser().feed(wire(("Event", "VarSet"), ("Variable", "x")))[0]
    lazy = FrameParser(lazy_headers=True).feed(wire(("Event", "VarSet"), ("Variable", "x")))[0]
    assert (eager._flat is not None, lazy._flat is None) == (True, True)  # split as made / on first use
    assert eager.flat == lazy.flat == ("Event", "VarSet", "Variable", "x")


@pytest.mark.parametrize("prefix", [b" ", b"X"])
def test_only_a_frame_opening_with_response_follows_is_old_command_output(prefix: bytes) -> None:
    parser = FrameParser()
    frames = parser.feed(prefix + b"Response: Follows\n\nline two\n--END COMMAND--\n\n" + wire(("Event", "Next")))
    assert [f.headers for f in frames] == [((prefix.decode() + "Response", "Follows"),), (("Event", "Next"),)]
    assert parser.malformed == {"no_colon": 2, "no_headers": 1}


def test_old_command_output_after_extra_blank_lines_is_still_glued_to_its_end_marker() -> None:
    data = b"Event: A\n\n\nResponse: Follows\nActionID: 1\nout one\n\nout two\n--END COMMAND--\n\n"
    frames = FrameParser().feed(data)
    assert [f.event for f in frames] == ["A", None]
    assert frames[1].get_all("Output") == ["out one", "", "out two"]


@pytest.mark.parametrize("prefix", [b" ", b"X"])
def test_command_output_lines_only_look_like_a_new_frame_when_they_open_with_its_header(prefix: bytes) -> None:
    data = b"Response: Follows\nActionID: 2\nline\n\n" + prefix + b"Event: not a frame\n--END COMMAND--\n\n"
    frames = FrameParser().feed(data)
    assert [f.get_all("Output") for f in frames] == [["line", "", prefix.decode() + "Event: not a frame"]]


def test_a_new_frame_after_extra_blank_lines_ends_command_output_without_its_marker() -> None:
    frames = FrameParser().feed(b"Response: Follows\nActionID: 3\n\n\nEvent: Next\n\n")
    assert [f.headers for f in frames] == [(("Response", "Follows"), ("ActionID", "3")), (("Event", "Next"),)]


def test_invalid_utf8_in_a_bare_lf_frame_is_replaced_not_fatal() -> None:
    only = FrameParser().feed(b"Event: Newchannel\nCallerIDName: \xff\xfeBob\n\n")[0]
    assert only.get("CallerIDName") == "\ufffd\ufffdBob"


def test_a_bare_lf_frame_of_exactly_max_frame_bytes_is_kept() -> None:
    parser = FrameParser(max_frame_bytes=len(b"Event: A\nX: 1"), max_line_bytes=100)
    assert [f.to_dict() for f in parser.feed(b"Event: A\nX: 1\n\n")] == [{"Event": "A", "X": "1"}]
    assert not parser.malformed


def test_a_bare_lf_frame_of_exactly_max_headers_lines_is_kept() -> None:
    parser = FrameParser(max_headers=2)
    assert [f.to_dict() for f in parser.feed(b"Event: A\nX: 1\n\n")] == [{"Event": "A", "X": "1"}]
    assert not parser.malformed


def test_every_malformed_frame_is_counted_not_just_the_first_of_its_kind() -> None:
    parser = FrameParser(max_frame_bytes=40, max_headers=3)
    nul = b"Event: Hangup\r\nChannel: PJSIP/1\x00\r\n\r\n"
    crowded = wire(*[("H", "1")] * 4)
    long = wire(("Event", "Long"), ("Filler", "z" * 40))
    frames = parser.feed(nul + nul + crowded + crowded + long + long + wire(("Event", "Ok")))
    assert [f.event for f in frames] == ["Ok"]
    assert parser.malformed == {"binary": 2, "too_many_headers": 2, "frame_too_long": 2}


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


def test_extra_blank_lines_between_bare_lf_frames_are_not_malformed() -> None:
    parser = FrameParser()
    assert [f.event for f in parser.feed(b"Event: A\n\n\n\nEvent: B\n\n")] == ["A", "B"]
    assert not parser.malformed


@pytest.mark.parametrize("lazy", [False, True])
def test_an_empty_key_on_the_first_line_of_a_read_is_dropped_and_counted(lazy: bool) -> None:
    parser = FrameParser(lazy_headers=lazy)
    parser.feed(BANNER)
    frames = parser.feed(b": orphan\r\nEvent: A\r\n\r\n")
    assert [f.headers for f in frames] == [(("Event", "A"),)]
    assert parser.malformed == {"empty_key": 1}


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


def test_every_overlong_partial_frame_is_counted() -> None:
    parser = FrameParser(max_frame_bytes=20)
    parser.feed(b"Event: A\r\nX: " + b"y" * 40)
    parser.feed(b"\r\n\r\n")
    parser.feed(b"Event: B\r\nX: " + b"y" * 40)
    assert parser.malformed == {"frame_too_long": 2}


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
