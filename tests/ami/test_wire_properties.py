"""Properties of the frame parser: chunking never matters, actions round-trip, nothing raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser, encode_action

KEYS = st.text(alphabet=st.characters(categories=["Lu", "Ll", "Nd"], include_characters="-_"), min_size=1, max_size=12)
VALUES = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=30)
HEADERS = st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=8)
# Streams take a while to draw; the profile (tests/conftest.py) decides everything else.
SLOW_DRAWS = settings(suppress_health_check=[HealthCheck.too_slow])


def _parse_in_chunks(
    data: bytes, cuts: list[int], *, lazy: bool = False
) -> tuple[list[Frame], dict[str, int], str | None]:
    parser = FrameParser(lazy_headers=lazy)
    frames: list[Frame] = []
    start = 0
    for cut in sorted(set(cuts)):
        frames += parser.feed(data[start:cut])
        start = cut
    frames += parser.feed(data[start:])
    parser.finish()
    return frames, dict(parser.malformed), parser.banner


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Valid-looking AMI streams with junk sprinkled in, CRLF or LF, with or without banner."""
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    parts = [b"Asterisk Call Manager/11.0.0" + eol] if draw(st.booleans()) else []
    for headers in draw(st.lists(HEADERS, max_size=6)):
        lines = [f"{k}: {v}".encode() for k, v in headers]
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([b"junk", b": x", b"a:b: c"])))
        parts.append(eol.join(lines) + eol + eol)
    return b"".join(parts)


@SLOW_DRAWS
@given(data=streams(), cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_any_chunking_of_a_stream_gives_the_same_frames(data: bytes, cuts: list[int]) -> None:
    assert _parse_in_chunks(data, cuts) == _parse_in_chunks(data, [])


@SLOW_DRAWS
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_any_chunking_of_arbitrary_bytes_gives_the_same_frames(data: bytes, cuts: list[int]) -> None:
    assert _parse_in_chunks(data, cuts)[0] == _parse_in_chunks(data, [])[0]


@SLOW_DRAWS
@given(data=streams(), cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_lazy_headers_give_the_same_frames_names_and_counts(data: bytes, cuts: list[int]) -> None:
    lazy_frames, malformed, banner = _parse_in_chunks(data, cuts, lazy=True)
    eager_frames = _parse_in_chunks(data, [])[0]
    # Read the names first (the lazy frames' shortcut), then every header.
    assert [f.event for f in lazy_frames] == [f.event for f in eager_frames]
    assert [f.get("x") for f in lazy_frames] == [f.get("x") for f in eager_frames]
    assert (lazy_frames, malformed, banner) == _parse_in_chunks(data, [])


@SLOW_DRAWS
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_lazy_headers_give_the_same_frames_for_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    lazy_frames = _parse_in_chunks(data, cuts, lazy=True)[0]
    assert [f.event for f in lazy_frames] == [f.event for f in _parse_in_chunks(data, [])[0]]
    assert lazy_frames == _parse_in_chunks(data, [])[0]


@SLOW_DRAWS
@given(action=KEYS, headers=st.lists(st.tuples(KEYS, VALUES), max_size=8))
def test_encode_action_round_trips_through_the_parser(action: str, headers: list[tuple[str, str]]) -> None:
    parser = FrameParser()
    parser.feed(b"Asterisk Call Manager/11.0.0\r\n")
    frames = parser.feed(encode_action(action, headers))
    assert frames == [Frame((("Action", action), *headers))]
    assert not parser.malformed


@SLOW_DRAWS
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_parser_never_raises_on_arbitrary_bytes(chunks: list[bytes]) -> None:
    parser = FrameParser(max_line_bytes=64, max_frame_bytes=256, max_headers=8)
    for chunk in chunks:
        for found in parser.feed(chunk):
            assert found.headers
            assert all(key for key, _ in found.headers)
        assert parser.pending_bytes <= 256 + 300
    parser.finish()


@SLOW_DRAWS
@given(
    garbage=st.binary(max_size=200).filter(lambda b: b"\n" not in b),
    cuts=st.lists(st.integers(0, 800), max_size=5),
)
def test_garbage_between_frames_never_loses_the_next_valid_frame(garbage: bytes, cuts: list[int]) -> None:
    tail = b"\r\n\r\nEvent: Sentinel\r\nX: 1\r\n\r\n"
    data = b"Asterisk Call Manager/11.0.0\r\n" + garbage + tail
    frames = _parse_in_chunks(data, cuts)[0]
    assert frames[-1] == Frame((("Event", "Sentinel"), ("X", "1")))
