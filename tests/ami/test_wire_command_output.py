"""`Response: Follows` command output (old Asterisk): its lines become `Output` headers up to `--END COMMAND--`."""

from __future__ import annotations

import pytest

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import BANNER, wire


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
