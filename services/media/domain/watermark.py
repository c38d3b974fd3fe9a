"""Watermarks: what a request may ask for, and drawing one onto a variant. Pure (no I/O, no clock).

A watermark is either ``text`` or an ``overlay`` (the bytes of another media's variant, a logo),
placed at a corner, the centre, or tiled across the image, at ``opacity`` (0.1-1.0) and
``scale`` (its width as a fraction of the image width, 0.1-1.0). It is drawn on the
un-watermarked variant each time, so re-applying replaces the previous watermark instead of
stacking on it, and dropping the watermarked outputs removes it.

The watermarked output keeps its variant's format and quality (:func:`encode_variant`).
"""

from __future__ import annotations

import enum
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from runtime.errors import InvalidArgument
from services.media.domain.encoding import RenderedVariant, encode_variant
from services.media.domain.pipeline import CorruptImage
from services.media.domain.variants import VariantSpec

__all__ = [
    "DEFAULT_OPACITY",
    "DEFAULT_SCALE",
    "WATERMARKED_SUFFIX",
    "Position",
    "WatermarkSpec",
    "apply_watermark",
    "watermarked_name",
]

DEFAULT_OPACITY = 0.5
DEFAULT_SCALE = 0.25
MAX_TEXT = 200
MARGIN = 0.02
"""Space between a corner watermark and the image's edges, as a fraction of the image width."""
TILE_GAP = 0.5
"""Space between tiles, as a fraction of the watermark's own size."""
WATERMARKED_SUFFIX = ".watermarked"
"""Appended to a variant's name for its watermarked output (a name no variant spec can have)."""


class Position(enum.Enum):
    TOP_LEFT = "top-left"
    TOP_RIGHT = "top-right"
    BOTTOM_LEFT = "bottom-left"
    BOTTOM_RIGHT = "bottom-right"
    CENTER = "center"
    TILE = "tile"

    @classmethod
    def parse(cls, value: str) -> Position:
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise InvalidArgument("position", f"{value!r} is not a position ({known})") from None


def watermarked_name(variant: str) -> str:
    return variant + WATERMARKED_SUFFIX


@dataclass(frozen=True, slots=True)
class WatermarkSpec:
    """One watermark request, checked on construction (InvalidArgument naming the field)."""

    position: Position = Position.BOTTOM_RIGHT
    opacity: float = DEFAULT_OPACITY
    scale: float = DEFAULT_SCALE
    text: str = ""
    overlay_media_id: str = ""
    variants: tuple[str, ...] = ()
    """The variants to watermark; empty: all of them."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.opacity) and 0.1 <= self.opacity <= 1.0):
            raise InvalidArgument("opacity", f"{self.opacity} must be 0.1-1.0")
        if not (math.isfinite(self.scale) and 0.1 <= self.scale <= 1.0):
            raise InvalidArgument("scale", f"{self.scale} must be 0.1-1.0 of the image width")
        if bool(self.text) == bool(self.overlay_media_id):
            raise InvalidArgument("watermarkId", "give exactly one of `text` and `watermarkId`")
        if len(self.text) > MAX_TEXT or (self.text and not self.text.isprintable()):
            raise InvalidArgument("text", f"at most {MAX_TEXT} printable characters")
        if len(set(self.variants)) != len(self.variants):
            raise InvalidArgument("variants", "a variant is named twice")

    def chosen(self, available: Sequence[str]) -> tuple[str, ...]:
        """The variants to draw on, out of ``available`` (InvalidArgument naming an unknown one)."""
        if not self.variants:
            return tuple(available)
        unknown = [v for v in self.variants if v not in available]
        if unknown:
            raise InvalidArgument("variants", f"no variant {unknown[0]!r} (the media has {', '.join(available)})")
        return self.variants


def apply_watermark(
    data: bytes, spec: VariantSpec, mark: WatermarkSpec, overlay: bytes | None = None
) -> RenderedVariant:
    """``data`` (an encoded variant of ``spec``) with ``mark`` drawn on it, encoded like ``spec``.

    ``overlay`` is the logo's encoded bytes when ``mark`` has no text.
    """
    base = _open(data, "variant")
    with base:
        base.load()
        exif = base.info.get("exif")
        xmp = base.info.get("xmp")
        canvas = base.convert("RGBA")
    stamp = _text_stamp(mark.text, canvas.width, mark.scale) if mark.text else _logo_stamp(overlay, canvas.width, mark)
    stamp = _faded(stamp, mark.opacity)
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    for corner in _placements(canvas.size, stamp.size, mark.position):
        layer.paste(stamp, corner)  # placements never overlap: a plain copy keeps the stamp's alpha
    out = Image.alpha_composite(canvas, layer)
    if not _has_alpha(base.mode):
        out = out.convert("RGB")
    return encode_variant(out, spec, exif, xmp)


def _has_alpha(mode: str) -> bool:
    return mode in ("RGBA", "LA", "PA") or mode.endswith("A")


def _open(data: bytes, what: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(f"cannot read the {what}: {exc}") from None


def _text_stamp(text: str, image_width: int, scale: float) -> Image.Image:
    """``text`` in white with a dark outline (legible on light and dark photos), about
    ``scale`` × ``image_width`` wide."""
    target = max(1, round(image_width * scale))
    probe = ImageFont.load_default(size=100)
    left, top, right, bottom = probe.getbbox(text, stroke_width=4)
    size = max(6, int(100 * target / max(1, right - left)))
    font = ImageFont.load_default(size=size)
    stroke = max(1, size // 25)
    left, top, right, bottom = (round(edge) for edge in font.getbbox(text, stroke_width=stroke))
    stamp = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
    ImageDraw.Draw(stamp).text(
        (-left, -top), text, font=font, fill=(255, 255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0, 255)
    )
    return stamp


def _logo_stamp(overlay: bytes | None, image_width: int, mark: WatermarkSpec) -> Image.Image:
    if overlay is None:
        raise InvalidArgument("watermarkId", "the watermark image is missing")
    logo = _open(overlay, "watermark image")
    with logo:
        logo = logo.convert("RGBA")
    width = max(1, round(image_width * mark.scale))
    height = max(1, round(logo.height * width / logo.width))
    return logo.resize((width, height), Image.Resampling.LANCZOS)


def _faded(stamp: Image.Image, opacity: float) -> Image.Image:
    if opacity >= 1.0:
        return stamp
    alpha = stamp.getchannel("A").point(lambda a: round(a * opacity))
    stamp.putalpha(alpha)
    return stamp


def _placements(canvas: tuple[int, int], stamp: tuple[int, int], position: Position) -> list[tuple[int, int]]:
    """Top-left corners where the stamp goes (a tile may start or end partly outside)."""
    (w, h), (sw, sh) = canvas, stamp
    margin = round(w * MARGIN)
    if position is Position.TILE:
        step_x, step_y = sw + max(1, round(sw * TILE_GAP)), sh + max(1, round(sh * TILE_GAP))
        return [(x, y) for y in range(0, h, step_y) for x in range(0, w, step_x)]
    x = {"left": margin, "right": w - sw - margin}
    y = {"top": margin, "bottom": h - sh - margin}
    if position is Position.CENTER:
        return [((w - sw) // 2, (h - sh) // 2)]
    vertical, horizontal = position.value.split("-")
    return [(x[horizontal], y[vertical])]
