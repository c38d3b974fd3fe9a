"""What an upload is, from its first bytes: the image format and the dimensions its header declares.

Only the container's magic and header fields are read here, never a decoder: a file that is no
supported image is refused before Pillow sees it, and the declared pixel count is checked before
anything is decoded (a 2 KB PNG may declare 50,000×50,000 pixels).

Every function takes bytes and never raises anything but ``UnsupportedMediaType`` (from
:func:`sniff`, HTTP 415) — they are fuzzed with arbitrary input.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from runtime.errors import UnsupportedMediaType

__all__ = ["HEADER_PROBE_BYTES", "ImageKind", "Sniffed", "detect_kind", "header_size", "not_an_image", "sniff"]

HEADER_PROBE_BYTES = 32
"""Enough leading bytes to tell every supported format apart."""


class ImageKind(enum.Enum):
    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"
    GIF = "image/gif"

    @property
    def content_type(self) -> str:
        return self.value


def not_an_image(problem: str) -> UnsupportedMediaType:
    """The refusal of bytes that are no image we take (field ``file``)."""
    return UnsupportedMediaType("file", problem)


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: ImageKind
    width: int | None
    height: int | None
    """``None`` while the header has not fully arrived (or is malformed: the decoder will say)."""

    @property
    def pixels(self) -> int | None:
        return None if self.width is None or self.height is None else self.width * self.height


def detect_kind(head: bytes) -> ImageKind | None:
    """The format from the magic bytes alone; ``None`` when it is none we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return ImageKind.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageKind.PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ImageKind.GIF
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageKind.WEBP
    return None


def sniff(data: bytes) -> Sniffed:
    """The format and declared size of ``data``; ``UnsupportedMediaType`` when it is no image we take."""
    if not data:
        raise not_an_image("the file is empty")
    kind = detect_kind(data[:HEADER_PROBE_BYTES])
    if kind is None:
        raise not_an_image("not a JPEG, PNG, WebP or GIF image (judged from its bytes)")
    size = header_size(kind, data)
    return Sniffed(kind, *(size if size is not None else (None, None)))


def header_size(kind: ImageKind, data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header declares them, or ``None`` if the header is incomplete."""
    try:
        return _READERS[kind](data)
    except (struct.error, IndexError, ValueError):
        return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # Signature (8), then the IHDR chunk: length (4), type (4), width (4), height (4).
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif_size(data: bytes) -> tuple[int, int] | None:
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1 at offset 24
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return (w, h) if len(data) >= 30 else None
    if chunk == b"VP8 ":  # lossy: frame tag (3), start code 9d 01 2a, 14-bit width and height
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature 0x2f, then 14-bit width-1 and height-1 packed
        if data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if pos + 9 > end:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


_READERS = {
    ImageKind.JPEG: _jpeg_size,
    ImageKind.PNG: _png_size,
    ImageKind.GIF: _gif_size,
    ImageKind.WEBP: _webp_size,
}
