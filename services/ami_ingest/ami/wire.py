"""AMI wire format: split a byte stream into frames of ``Key: value`` headers, and encode actions.

The Manager Interface is line based: a frame is a run of ``Key: value`` lines closed by an
empty line (``\\r\\n\\r\\n``; a bare ``\\n`` line ending is accepted too). The first line of a
connection is a banner (``Asterisk Call Manager/11.0.0``) with no blank line after it.

Parsing choices (each one is counted in :attr:`FrameParser.malformed`, never raised):

* ``no_colon`` – a line without ``:`` is dropped; the rest of its frame survives, because the
  other headers were delivered intact and a single junk line must not cost us an event.
* ``empty_key`` – a line starting with ``:`` is dropped the same way.
* ``no_headers`` – a frame left with no valid header at all is dropped.
* ``binary`` – a frame holding a NUL byte is dropped whole: AMI is text, so NUL means the
  stream is corrupt there and none of the frame's headers can be trusted.
* ``line_too_long`` – a line longer than ``max_line_bytes`` is dropped, the frame survives.
* ``frame_too_long`` – a frame longer than ``max_frame_bytes`` is dropped; when it is still
  incomplete, its bytes are discarded as they arrive until the next frame boundary, so memory
  stays bounded by ``max_frame_bytes`` whatever the peer sends.
* ``too_many_headers`` – a frame with more than ``max_headers`` lines is dropped.
* ``truncated`` – :meth:`FrameParser.finish` found a partial frame when the connection closed.

Values are UTF-8 decoded with ``errors="replace"`` (Asterisk passes caller names through raw).
A line is split at its first ``": "`` (Asterisk always writes ``Key: value``); a line without
``": "`` is split at its first ``:`` (``Key:value``), so ``Key:a: b`` gives ``Key:a`` → ``b``.

Old Asterisk answers ``Command`` with ``Response: Follows`` followed by raw output lines and
``--END COMMAND--``; that output may hold empty lines, so such a frame runs to the marker, and
each output line becomes an ``Output`` header, like Asterisk 14+ sends them.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from itertools import accumulate, repeat

from runtime.errors import InvalidArgument
from services.ami_ingest.ami.frame import LAZY_SEPARATOR, Frame, frames_from_lazy_texts, frames_from_tokens

__all__ = ["FrameParser", "encode_action"]

_FOLLOWS = b"Response: Follows"
_END_COMMAND = b"--END COMMAND--"
_FRAME_STARTS = (b"Event:", b"Response:")
# Fast path markers: ": " and CRLF both become _MARK; the skeleton keeps only marks and CR/LF.
_MARK = LAZY_SEPARATOR.encode()
_MARK_TEXT = LAZY_SEPARATOR
_LINE_SKELETON = _MARK + b"\r\n"
_CRLF_TO_MARK = bytes.maketrans(b"\r\n", _MARK)
_NOT_SKELETON = bytes(b for b in range(256) if b not in b"\x01\r\n")
_UTF8 = repeat("utf-8")
_REPLACE = repeat("replace")
_FOLLOWS_HEADERS = frozenset({"response", "privilege", "actionid", "message", "commandid"})


class FrameParser:
    """Incremental, bounded AMI frame parser for one connection; feed it bytes as they arrive.

    With ``lazy_headers`` the frames of the fast path keep their validated text and split it
    into headers on first use (see :class:`Frame`): the same frames, the same malformed
    counts, the split paid only for the frames someone reads.
    """

    __slots__ = (
        "_buffer",
        "_fast_limit",
        "_first_line_seen",
        "_lazy",
        "_skipping",
        "banner",
        "malformed",
        "max_frame_bytes",
        "max_headers",
        "max_line_bytes",
    )

    def __init__(
        self,
        *,
        max_line_bytes: int = 8192,
        max_frame_bytes: int = 1 << 20,
        max_headers: int = 2048,
        lazy_headers: bool = False,
    ) -> None:
        if max_line_bytes <= 0 or max_frame_bytes <= 0 or max_headers <= 0:
            raise InvalidArgument("limits", "max_line_bytes, max_frame_bytes and max_headers must be > 0")
        self.max_line_bytes = max_line_bytes
        self.max_frame_bytes = max_frame_bytes
        self.max_headers = max_headers
        self._lazy = lazy_headers
        # A frame this short cannot break the line or frame limit: no need to measure lines.
        self._fast_limit = min(max_line_bytes, max_frame_bytes)
        self.malformed: collections.Counter[str] = collections.Counter()
        self.banner: str | None = None
        self._buffer = b""
        self._first_line_seen = False
        self._skipping = False

    def reset(self) -> None:
        """A new connection: forget the partial frame and the banner (the counters stay)."""
        self.banner = None
        self._buffer = b""
        self._first_line_seen = False
        self._skipping = False

    def finish(self) -> None:
        """The connection closed: a partial frame left over is counted ``truncated``."""
        if self._buffer.strip(b"\r\n") and not self._skipping:
            self.malformed["truncated"] += 1
        self._buffer = b""
        self._skipping = False

    @property
    def pending_bytes(self) -> int:
        """Bytes of a partial frame held until its end arrives."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes from the wire; return every frame they complete, in order."""
        buf = self._buffer + data if self._buffer else data
        self._buffer = b""
        if self._skipping:
            buf = self._skip_to_boundary(buf)
            if self._skipping:
                return []
        if not self._first_line_seen:
            buf = self._take_banner(buf)
            if not self._first_line_seen:
                return []
        if _FOLLOWS in buf:
            frames = self._feed_general(buf)
        else:
            # Split at the last CRLF CRLF; frames inside with bare-LF ends take the general path.
            end = buf.rfind(b"\r\n\r\n")
            frames = []
            if end < 0:
                rest = buf
            else:
                self._parse_crlf_block(buf[:end], frames)
                rest = buf[end + 4 :]
            if b"\n\n" in rest or b"\n\r\n" in rest:
                frames.extend(self._feed_general(rest))
            else:
                self._buffer = rest
        if len(self._buffer) > self.max_frame_bytes:
            self.malformed["frame_too_long"] += 1
            self._skipping = True
            self._buffer = self._buffer[-2:]
        return frames

    def _skip_to_boundary(self, buf: bytes) -> bytes:
        ends = [i + 2 for i in (buf.find(b"\n\n"),) if i >= 0]
        ends += [i + 3 for i in (buf.find(b"\n\r\n"),) if i >= 0]
        if not ends:
            # Keep a short tail so a boundary split across two reads is still seen.
            self._buffer = buf[-2:]
            return b""
        self._skipping = False
        return buf[min(ends) :]

    def _take_banner(self, buf: bytes) -> bytes:
        stripped = buf.lstrip(b"\r\n")
        end = stripped.find(b"\n")
        if end < 0:
            if len(stripped) > self.max_line_bytes:
                self._first_line_seen = True
                return stripped
            self._buffer = buf
            return b""
        self._first_line_seen = True
        first = stripped[:end]
        if b":" in first:
            return stripped
        self.banner = first.decode("utf-8", "replace").strip()
        return stripped[end + 1 :]

    def _parse_crlf_block(self, block: bytes, frames: list[Frame]) -> None:
        """Frames of a block that holds only complete frames separated by ``\\r\\n\\r\\n``.

        The fast path takes the whole block at once. Where it refuses, the block is halved at a
        frame boundary and each half tried again, so one odd frame costs a few fast-path tries,
        not the speed of its whole read; a single frame it refuses goes the general way.
        """
        uniform = self._parse_uniform(block)
        if uniform is not None:
            frames.extend(uniform)
            return
        cut = block.find(b"\r\n\r\n", len(block) >> 1)
        if cut < 0:
            cut = block.rfind(b"\r\n\r\n")
        if cut < 0:
            for piece in block.replace(b"\r\n", b"\n").split(b"\n\n"):
                parsed = self._frame_from_text(piece.decode("utf-8", "replace"))
                if parsed is not None:
                    frames.append(parsed)
            return
        self._parse_crlf_block(block[:cut], frames)
        self._parse_crlf_block(block[cut + 4 :], frames)

    def _parse_uniform(self, block: bytes) -> list[Frame] | None:
        """The fast path: every line of every frame is ``Key: value`` with exactly one ``": "``.

        Both separators are replaced by the same marker (same length, so ``bytes.replace``
        works in place) and the block is split once; a skeleton keeping only the markers and
        line ends proves the shape first, so each line gives exactly one (key, value) pair and
        the result equals the general per-line path's. ``None`` when the shape does not hold,
        or a frame is longer than ``min(max_line_bytes, max_frame_bytes)`` (no line or frame
        that short can break a limit) or has more than ``max_headers`` lines.
        """
        if b"\x01" in block or b"\x00" in block or block.startswith(b": ") or b"\n: " in block or not block:
            return None  # a byte the marker needs, a NUL, an empty key (all taken the general way)
        marked = block.replace(b": ", _MARK)
        skeleton = marked.translate(None, _NOT_SKELETON)
        per_frame = skeleton.split(b"\r\n\r\n")
        flat = skeleton.replace(b"\r\n\r\n", b"\r\n")
        lines = (len(flat) + 2) // 4
        if flat != _LINE_SKELETON * (lines - 1) + _MARK:
            return None
        if (max(map(len, per_frame)) + 2) // 4 > self.max_headers:
            return None
        raws = marked.split(b"\r\n\r\n")
        # A line without ": " leaves a CRLF CRLF in the skeleton that is no frame boundary: the
        # block then holds fewer frames than the skeleton.
        if len(raws) != len(per_frame) or max(map(len, raws)) > self._fast_limit:
            return None
        if self._lazy:
            return frames_from_lazy_texts(list(map(bytes.decode, raws, _UTF8, _REPLACE)))
        # The skeleton proved every CR and LF is part of a CRLF: map both bytes to the mark.
        text = marked.translate(_CRLF_TO_MARK).decode("utf-8", "replace")
        tokens = tuple(text.split(_MARK_TEXT))
        # A frame of s skeleton bytes has (s + 2) / 2 tokens; one empty token follows each frame.
        stops = list(accumulate([(size + 4) >> 1 for size in map(len, per_frame)]))
        return frames_from_tokens(tokens, stops)

    def _feed_general(self, buf: bytes) -> list[Frame]:
        """Any mix of CRLF / LF line ends, and old ``Response: Follows`` command output."""
        lf, crlf = buf.rfind(b"\n\n"), buf.rfind(b"\n\r\n")
        boundary = max(lf + 2 if lf >= 0 else 0, crlf + 3 if crlf >= 0 else 0)
        self._buffer = buf[boundary:]
        pieces = buf[:boundary].replace(b"\r\n", b"\n").split(b"\n\n")
        pieces.pop()  # what follows the last boundary: empty, the remainder is kept above
        frames: list[Frame] = []
        i = 0
        count = len(pieces)
        while i < count:
            piece = pieces[i]
            i += 1
            if piece.lstrip(b"\n").startswith(_FOLLOWS) and _END_COMMAND not in piece:
                # Old Command output may hold empty lines: glue pieces up to the end marker, or
                # up to the start of a new frame (the output ended without its marker: a lone
                # ``Response: Follows`` must not swallow the frames after it).
                joined = [piece]
                while i < count and _END_COMMAND not in joined[-1]:
                    if pieces[i].lstrip(b"\n").startswith(_FRAME_STARTS):
                        break
                    joined.append(pieces[i])
                    i += 1
                piece = b"\n\n".join(joined)
                if _END_COMMAND not in piece and i >= count:
                    # Raw bytes were CRLF-normalised; LF is an equally valid line end.
                    self._buffer = piece + b"\n\n" + self._buffer
                    break
            parsed = self._frame_from_text(piece.decode("utf-8", "replace"))
            if parsed is not None:
                frames.append(parsed)
        return frames

    def _frame_from_text(self, text: str) -> Frame | None:
        """One frame from LF-separated lines, counting whatever is malformed."""
        malformed = self.malformed
        text = text.lstrip("\n")
        if not text:
            return None
        if len(text) * 4 > self.max_frame_bytes and len(text.encode("utf-8", "replace")) > self.max_frame_bytes:
            malformed["frame_too_long"] += 1
            return None
        if "\x00" in text:
            malformed["binary"] += 1
            return None
        lines = text.split("\n")
        if len(lines) > self.max_headers:
            malformed["too_many_headers"] += 1
            return None
        if text.startswith("Response: Follows"):
            headers = _parse_follows(lines)
        else:
            headers = []
            check_length = len(text) * 4 > self.max_line_bytes
            for line in lines:
                key, sep, value = line.partition(": ")
                if not sep:
                    key, sep, value = line.partition(":")
                    if not sep:
                        malformed["no_colon"] += 1
                        continue
                if not key:
                    malformed["empty_key"] += 1
                    continue
                if check_length and len(line.encode("utf-8", "replace")) > self.max_line_bytes:
                    malformed["line_too_long"] += 1
                    continue
                headers.append((key, value))
        if not headers:
            malformed["no_headers"] += 1
            return None
        return Frame(tuple(headers))


def _parse_follows(lines: list[str]) -> list[tuple[str, str]]:
    """``Response: Follows`` command output: leading headers, then raw lines as ``Output``."""
    headers: list[tuple[str, str]] = []
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep or key.strip().lower() not in _FOLLOWS_HEADERS:
            break
        headers.append((key, value[1:] if value[:1] == " " else value))
    output = lines[len(headers) :]
    if output:
        last = output[-1]
        marker = last.rfind("--END COMMAND--")
        if marker >= 0:
            last = last[:marker]
            if last:
                output[-1] = last
            else:
                output.pop()
    headers.extend(("Output", line.rstrip("\r")) for line in output)
    return headers


def encode_action(action: str, headers: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> bytes:
    """Encode one action as ``Action: X\\r\\nKey: value\\r\\n...\\r\\n\\r\\n`` (UTF-8).

    Raises :class:`InvalidArgument` for a CR, LF or NUL in any name or value (a value could
    inject headers or end the frame early), an empty name or one holding ``:`` or spaces at its
    ends, and text that is not encodable (lone surrogates).
    """
    items: Iterable[tuple[str, str]] = headers.items() if isinstance(headers, Mapping) else headers
    _check_value("Action", action)
    if not action:
        raise InvalidArgument("Action", "must not be empty")
    parts = [f"Action: {action}\r\n"]
    for key, value in items:
        key = str(key)
        value = str(value)
        if not key or ":" in key or key != key.strip():
            raise InvalidArgument(key or "header", "header name must be non-empty, without ':' or spaces")
        _check_value(key, key)
        _check_value(key, value)
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument("headers", "must be valid Unicode text (no lone surrogates)") from exc


def _check_value(field: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise InvalidArgument(field, "must not contain CR, LF or NUL")
