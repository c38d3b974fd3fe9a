"""A decoded image's colours made what the pipeline works in: an L, LA, RGB or RGBA mode, sRGB.

:func:`normalise_mode` turns palette, 1-bit, 16-bit greyscale and CMYK images into one of the four
modes (CMYK through its ICC profile where it has a usable one); :func:`to_srgb` converts an image's
pixels from its embedded ICC profile to sRGB with littleCMS (the transforms are cached per profile).
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageCms

__all__ = ["normalise_mode", "to_srgb"]


def normalise_mode(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """An L, LA, RGB or RGBA image, and the ICC profile still to apply (``None``: already sRGB)."""
    mode = image.mode
    if mode == "CMYK":
        if icc is not None:
            converted = _cms_convert(image, icc, "RGB")
            if converted is not None:
                return converted, None
        return image.convert("RGB"), None
    if mode in ("RGB", "RGBA", "L", "LA"):
        return image, icc
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB"), icc
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale: scale 0-65535 to 0-255 (a plain convert("L") would clip).
        wide = image if mode == "I" else image.convert("I")
        return wide.point(lambda v: v / 257).convert("L"), icc
    if mode == "1":
        return image.convert("L"), icc
    if mode == "La":
        return image.convert("LA"), icc
    if mode == "RGBa":
        return image.convert("RGBA"), icc
    return image.convert("RGBA" if image.has_transparency_data else "RGB"), icc


@functools.lru_cache(maxsize=64)
def _srgb_transform(icc: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from ``icc`` to sRGB, or ``None`` when the profile is sRGB already or unusable."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if in_mode != "CMYK" and "srgb" in (ImageCms.getProfileDescription(source) or "").lower():
            return None
        return ImageCms.buildTransform(source, _SRGB, in_mode, out_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _cms_convert(image: Image.Image, icc: bytes, out_mode: str) -> Image.Image | None:
    transform = _srgb_transform(icc, image.mode, out_mode)
    if transform is None:
        return None
    try:
        converted = ImageCms.applyTransform(image, transform)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    return converted


def to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """``image`` converted from its embedded profile to sRGB (unchanged if it cannot be)."""
    if image.mode in ("RGB", "RGBA"):
        return _cms_convert(image, icc, image.mode) or image
    if image.mode == "L":
        return _cms_convert(image, icc, "RGB") or image
    return image  # LA: littleCMS has no grey+alpha transform; grey with alpha is rare enough
