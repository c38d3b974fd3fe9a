"""A variant's pixels encoded in its output format (WebP, JPEG or PNG), with no metadata but the
EXIF and XMP a caller passes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from services.media.domain import webp_encoder
from services.media.domain.variants import OutputFormat, VariantSpec

__all__ = ["RenderedVariant", "encode_variant"]


@dataclass(frozen=True, slots=True)
class RenderedVariant:
    name: str
    content_type: str
    width: int
    height: int
    data: bytes


def encode_variant(
    image: Image.Image, spec: VariantSpec, exif: bytes | None, xmp: bytes | str | None
) -> RenderedVariant:
    # Whatever Pillow carried along (comments, profiles, EXIF) stays behind: only what is passed goes
    # out. The image is this pipeline's own intermediate, and its metadata was read before.
    out = image
    out.info = {}
    params: dict[str, object] = {"quality": spec.quality}
    if exif:
        params["exif"] = exif
    if xmp:
        params["xmp"] = xmp if isinstance(xmp, bytes) else xmp.encode()
    if spec.format is OutputFormat.WEBP:
        params["method"] = webp_encoder.SIMPLE_API_METHOD
        data = None if exif or xmp else webp_encoder.encode_lossy(out, spec.quality)
        if data is not None:
            return RenderedVariant(spec.name, spec.format.content_type, out.width, out.height, data)
    elif spec.format is OutputFormat.JPEG:
        if out.mode in ("RGBA", "LA"):
            out = _flatten(out)
        params.pop("xmp", None)
    else:
        params.pop("quality")
        params["compress_level"] = 6
    buffer = io.BytesIO()
    out.save(buffer, spec.format.name, **params)
    width, height = out.size
    return RenderedVariant(spec.name, spec.format.content_type, width, height, buffer.getvalue())


def _flatten(image: Image.Image) -> Image.Image:
    """An opaque image: ``image`` over white (JPEG has no alpha)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background
