"""One AMI frame: its headers in wire order, repeated keys (ChanVariable, Output) kept.

Stored as one flat tuple ``(key0, value0, key1, value1, …)``: the parser fills it with a
single C-level ``tuple(islice(...))`` per frame instead of one 2-tuple per header, and the
lookups below work on it directly. ``headers`` (the pairs) is built on first use and kept.
Immutable like a frozen dataclass: assigning raises ``FrozenInstanceError``.

A frame from ``FrameParser(lazy_headers=True)`` holds its validated text instead and splits it
into the flat tuple on first use; its ``event`` is read straight from the first line. Most of
a busy event stream (VarSet, Newexten, …) is never looked at beyond its name, so the ingest
skips building a few hundred thousand strings a second. Both forms behave identically. The
parser makes lazy frames in bulk (:func:`frames_from_lazy_texts`): C-level ``map`` calls, no
Python code run per frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import FrozenInstanceError
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

LAZY_SEPARATOR = "\x01\x01"
"""Between key and value in a lazy frame's text (the parser's stand-in for ``": "``)."""
_LAZY_EVENT = "Event" + LAZY_SEPARATOR


class Frame:
    __slots__ = ("_flat", "_head", "_pairs", "_text")

    _flat: tuple[str, ...] | None
    """``None`` while a lazy frame has not been split yet."""
    _pairs: tuple[tuple[str, str], ...]
    _text: str
    """Lazy form: ``key<SEP>value`` lines joined by CRLF, ``<SEP>`` being :data:`LAZY_SEPARATOR`."""
    _head: str
    """Lazy form: the first line without its ``Event<SEP>`` prefix: the event's name when the
    frame starts with ``Event`` (no ``<SEP>`` left in it), else the whole first line."""

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        pairs = tuple((key, value) for key, value in headers)
        _set_flat(self, tuple(chain.from_iterable(pairs)))
        _set_pairs(self, pairs)

    @classmethod
    def from_flat(cls, flat: tuple[str, ...]) -> Frame:
        """A frame from ``(key0, value0, key1, value1, …)``; the parser's fast constructor."""
        if len(flat) % 2:
            raise ValueError("a flat header tuple has an even length")
        frame = _new(cls)
        _set_flat(frame, flat)
        return frame

    @classmethod
    def from_lazy_text(cls, text: str) -> Frame:
        """A frame from ``key<SEP>value`` lines joined by CRLF (see :data:`LAZY_SEPARATOR`).

        The caller guarantees each line holds exactly one separator and no other CR, LF or
        ``\x01``: the parser's fast path proves that for the whole block first.
        """
        return frames_from_lazy_texts([text])[0]

    def _tokens(self) -> tuple[str, ...]:
        flat = self._flat
        if flat is None:
            flat = tuple(self._text.replace("\r\n", LAZY_SEPARATOR).split(LAZY_SEPARATOR))
            _set_flat(self, flat)
        return flat

    @property
    def flat(self) -> tuple[str, ...]:
        return self._tokens()

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """``((key, value), …)`` in wire order."""
        try:
            return self._pairs
        except AttributeError:
            flat = self._tokens()
            pairs = tuple(zip(flat[0::2], flat[1::2], strict=True))
            _set_pairs(self, pairs)
            return pairs

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key``, compared case-insensitively."""
        flat = self._tokens()
        start = 0
        while True:  # exact spelling first: a C-level search
            try:
                index = flat.index(key, start)
            except ValueError:
                break
            if not index % 2:
                return flat[index + 1]
            start = index + 1
        lowered = key.lower()
        for index in range(0, len(flat), 2):
            if flat[index].lower() == lowered:
                return flat[index + 1]
        return default

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` in wire order (case-insensitive)."""
        lowered = key.lower()
        flat = self._tokens()
        return [flat[i + 1] for i in range(0, len(flat), 2) if flat[i].lower() == lowered]

    @property
    def event(self) -> str | None:
        flat = self._flat
        if flat is None:
            head = self._head
            if LAZY_SEPARATOR not in head:
                return head
            flat = self._tokens()
        if flat and flat[0] == "Event":  # where Asterisk puts it: skip the search
            return flat[1]
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def to_dict(self) -> dict[str, str]:
        """Headers as a dict; for a repeated key the first value wins."""
        flat = self._tokens()
        return dict(zip(flat[-2::-2], flat[-1::-2], strict=True))

    def to_lower_dict(self) -> dict[str, str]:
        """Headers keyed by lower-cased name (first value wins): case-blind lookups in O(1)."""
        flat = self._tokens()
        return dict(zip(map(str.lower, flat[-2::-2]), flat[-1::-2], strict=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return self._tokens() == other._tokens()

    def __hash__(self) -> int:
        return hash(self._tokens())

    def __repr__(self) -> str:
        return f"Frame(headers={self.headers!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Frame.from_flat, (self._tokens(),))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


def frames_from_tokens(tokens: tuple[str, ...], stops: Iterable[int]) -> list[Frame]:
    """Frames cut from one flat tuple of several frames' tokens, each frame followed by one token
    that is not its own: frame ``i`` is ``tokens[stops[i - 1] : stops[i] - 1]`` (from 0 for the
    first). The parser's fast path: the caller has proved every frame's shape.
    """
    frames: list[Frame] = []
    append = frames.append
    start = 0
    for stop in stops:
        frame = _new(Frame)
        _set_flat(frame, tokens[start : stop - 1])
        append(frame)
        start = stop
    return frames


def frames_from_lazy_texts(texts: list[str]) -> list[Frame]:
    """Lazy frames (see :meth:`Frame.from_lazy_text`), one per text, made without running Python
    code per frame: each step is a ``map`` of a C function over all of them."""
    frames = list(map(_new, repeat(Frame, len(texts))))
    first_lines = map(_first, map(str.partition, texts, repeat("\r\n")))
    _drain(map(_set_flat, frames, repeat(None)))
    _drain(map(_set_text, frames, texts))
    _drain(map(_set_head, frames, map(str.removeprefix, first_lines, repeat(_LAZY_EVENT))))
    return frames


_first = itemgetter(0)
_drain: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend
_new: Callable[[type[Frame]], Frame] = object.__new__
_set_flat: Callable[[Frame, tuple[str, ...] | None], None] = Frame.__dict__["_flat"].__set__
_set_pairs: Callable[[Frame, tuple[tuple[str, str], ...]], None] = Frame.__dict__["_pairs"].__set__
_set_text: Callable[[Frame, str], None] = Frame.__dict__["_text"].__set__
_set_head: Callable[[Frame, str], None] = Frame.__dict__["_head"].__set__
