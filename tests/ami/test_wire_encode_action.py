"""encode_action: an action written as Asterisk reads it; a value or name that would break the frame is refused."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidArgument
from services.ami_ingest.ami.wire import encode_action


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


def test_encode_action_names_an_empty_action_as_the_problem() -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode_action("")
    assert (caught.value.field, caught.value.problem) == ("Action", "must not be empty")
