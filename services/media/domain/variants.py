"""Which variants an image gets: variant specs, the presets per entity type, and their geometry.

A preset is configuration (``MEDIA_PRESETS``, JSON: entity type → list of specs); an upload may
also name its own specs. Geometry is computed here, once, for every variant of an image:

- ``fit``: the largest size inside ``width``×``height`` with the image's aspect ratio;
- ``cover``: fill ``width``×``height`` exactly, the overflow cropped around the centre;
- never upscaled: an image smaller than the box keeps its size (a ``cover`` variant then
  takes the largest centred region of the box's aspect ratio).

Every variant's resize before its crop is the source scaled by one factor, so the variants order
by that factor and each can be resized from the next larger one.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidArgument

__all__ = [
    "DEFAULT_PRESET",
    "DEFAULT_PRESETS",
    "Fit",
    "OutputFormat",
    "VariantGeometry",
    "VariantSpec",
    "parse_presets",
    "plan_variants",
]

MAX_VARIANT_SIDE = 8192
MAX_VARIANTS = 16
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class Fit(enum.Enum):
    FIT = "fit"
    COVER = "cover"


class OutputFormat(enum.Enum):
    WEBP = "webp"
    JPEG = "jpeg"
    PNG = "png"

    @property
    def content_type(self) -> str:
        return f"image/{self.value}"


@dataclass(frozen=True, slots=True)
class VariantSpec:
    name: str
    width: int
    height: int
    fit: Fit = Fit.FIT
    format: OutputFormat = OutputFormat.WEBP
    quality: int = 85

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidArgument("variants.name", f"{self.name!r} must be 1-32 of a-z, 0-9, '_' or '-'")
        for side, value in (("width", self.width), ("height", self.height)):
            if not 1 <= value <= MAX_VARIANT_SIDE:
                raise InvalidArgument(f"variants.{side}", f"{value} must be 1-{MAX_VARIANT_SIDE}")
        if not 1 <= self.quality <= 100:
            raise InvalidArgument("variants.quality", f"{self.quality} must be 1-100")

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> VariantSpec:
        try:
            return cls(
                name=str(raw["name"]),
                width=int(raw["width"]),
                height=int(raw["height"]),
                fit=Fit(raw.get("fit", "fit")),
                format=OutputFormat(raw.get("format", "webp")),
                quality=int(raw.get("quality", 85)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument("variants", f"bad variant spec {dict(raw)!r}: {exc}") from None


DEFAULT_PRESET = "default"
DEFAULT_PRESETS: Mapping[str, tuple[VariantSpec, ...]] = {
    DEFAULT_PRESET: (
        VariantSpec("thumb", 150, 150, Fit.COVER),
        VariantSpec("medium", 800, 800),
        VariantSpec("large", 1600, 1600),
    ),
    "user_avatar": (
        VariantSpec("thumb", 150, 150, Fit.COVER),
        VariantSpec("medium", 400, 400, Fit.COVER),
    ),
    "company_photo": (
        VariantSpec("thumb", 150, 150, Fit.COVER),
        VariantSpec("medium", 800, 800),
        VariantSpec("large", 1600, 1600),
    ),
}


def check_variant_set(specs: Sequence[VariantSpec]) -> tuple[VariantSpec, ...]:
    """``specs`` as a tuple, refused when empty, too many, or with a repeated name."""
    if not specs:
        raise InvalidArgument("variants", "at least one variant is needed")
    if len(specs) > MAX_VARIANTS:
        raise InvalidArgument("variants", f"at most {MAX_VARIANTS} variants")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InvalidArgument("variants", f"variant names repeat: {names}")
    return tuple(specs)


def parse_presets(text: str) -> dict[str, tuple[VariantSpec, ...]]:
    """The built-in presets, overridden or extended by ``MEDIA_PRESETS`` JSON (``""``: none)."""
    presets = dict(DEFAULT_PRESETS)
    if not text.strip():
        return presets
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError('must be a JSON object {"entity_type": [variant, ...]}')
    for entity_type, specs in raw.items():
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise ValueError(f"{entity_type}: must be a list of variant objects")
        try:
            presets[str(entity_type)] = check_variant_set([VariantSpec.from_json(s) for s in specs])
        except InvalidArgument as exc:
            raise ValueError(f"{entity_type}: {exc.message}") from None
    return presets


@dataclass(frozen=True, slots=True)
class VariantGeometry:
    spec: VariantSpec
    scale: float
    """The factor the source is resized by (≤ 1)."""
    resized: tuple[int, int]
    """The size after resizing, before a ``cover`` crop."""
    crop: tuple[int, int, int, int] | None
    """The box (left, top, right, bottom) cut from the resized image, or ``None``."""

    @property
    def size(self) -> tuple[int, int]:
        if self.crop is None:
            return self.resized
        left, top, right, bottom = self.crop
        return right - left, bottom - top


def _geometry(spec: VariantSpec, width: int, height: int) -> VariantGeometry:
    if spec.fit is Fit.FIT:
        scale = min(1.0, spec.width / width, spec.height / height)
    else:
        scale = min(1.0, max(spec.width / width, spec.height / height))
    resized = (max(1, round(width * scale)), max(1, round(height * scale)))
    if spec.fit is Fit.FIT:
        return VariantGeometry(spec, scale, resized, None)
    rw, rh = resized
    if rw >= spec.width and rh >= spec.height:
        cw, ch = spec.width, spec.height
    else:  # smaller than the box: the largest centred region of the box's aspect ratio
        box_ratio = spec.width / spec.height
        cw, ch = (
            (rw, max(1, math.floor(rw / box_ratio)))
            if rw / rh <= box_ratio
            else (max(1, math.floor(rh * box_ratio)), rh)
        )
        cw, ch = min(cw, rw), min(ch, rh)
    left, top = (rw - cw) // 2, (rh - ch) // 2
    crop = None if (cw, ch) == resized else (left, top, left + cw, top + ch)
    return VariantGeometry(spec, scale, resized, crop)


def plan_variants(specs: Sequence[VariantSpec], width: int, height: int) -> list[VariantGeometry]:
    """Every variant's geometry for a ``width``×``height`` (upright) source, largest scale first."""
    if width < 1 or height < 1:
        raise ValueError("image sides must be positive")
    plans = [_geometry(spec, width, height) for spec in specs]
    return sorted(plans, key=lambda g: (-g.scale, g.spec.name))
