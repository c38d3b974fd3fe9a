"""The image pipeline: bytes of an upload in, encoded variants out. Pure (no I/O, no clock).

One call, :func:`process_image`, does every step on one decode:

1. :func:`~services.media.domain.sniff.sniff` the format and the header's dimensions; refuse a
   non-image (415) or a declared pixel count over the limit (413) before any decoder runs.
2. Open with the sniffed format's decoder only, through the one :data:`Decoder` the call is given
   (:func:`open_original` unless a caller passes its own): the pipeline's only way from the bytes to
   pixels, called once, and every variant comes from the image it returns. A JPEG is decoded at a reduced DCT scale
   (``draft``: 1/2, 1/4, 1/8) that still leaves a real Lanczos reduction to the largest variant
   (:func:`dct_scale`): most of a big photo's pixels are never produced. Partial blocks at the
   right and bottom edges are dropped, as libvips' loader drops them.
3. Normalise the mode (:mod:`.colour`): palette and 1-bit images become RGB(A) or L, 16-bit
   greyscale is scaled (not clipped) to 8 bits, CMYK goes through its ICC profile (or a plain
   conversion) to RGB.
4. Resize once to the largest variant with libvips' own arithmetic (:mod:`.vips_reduce`: sharp's
   pixels exactly, premultiplied when there is alpha, each pass in parts on several threads),
   or where that does not apply with Pillow's Lanczos (:mod:`.pillow_resample`: in premultiplied alpha, so transparent
   edges do not bleed colour; in bands of rows on several threads for a big source), then apply the EXIF
   orientation and convert an embedded ICC profile to sRGB on that smaller image; every further
   variant is resized from the next larger one (:func:`.vips_reduce.resize`: the same Lanczos-3
   arithmetic, each axis by its own factor, at less CPU than Pillow's resampling).
5. Encode each variant (:mod:`.encoding`; WebP q85 by default) on a small pool of encoder threads, as soon as
   its pixels exist (the encoders run beside the next resize and each other),
   with no metadata at all — no EXIF, GPS, XMP, IPTC,
   comments or ICC (the pixels are sRGB) — unless the upload asked to keep EXIF and XMP, whose
   orientation tag is then reset (the pixels are already upright).

Jobs on several threads (a worker runs five) share one memory budget (:mod:`.budget`): a job takes
its decoded source's bytes, estimated from the header, and its render's before it decodes, gives
the source's back once the source is reduced to the first variant and freed (step 4), and the rest
when its variants are encoded. Two big sources never decode at once; small ones overlap.

An animated GIF or WebP yields its first frame. Transparency is kept.
Errors: ``UnsupportedMediaType`` (HTTP 415), ``PayloadTooLarge`` (413, too many pixels),
:class:`CorruptImage` (a permanent failure: retrying cannot fix the file).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import struct
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from runtime.errors import PayloadTooLarge, PermanentError
from services.media.domain import pillow_resample, vips_reduce
from services.media.domain.budget import SOURCE_BUDGET, MemoryBudget, decode_bytes, render_bytes
from services.media.domain.colour import normalise_mode, to_srgb
from services.media.domain.encoding import RenderedVariant, encode_variant
from services.media.domain.sniff import ImageKind, sniff
from services.media.domain.variants import Fit, OutputFormat, VariantGeometry, VariantSpec, plan_variants

__all__ = [
    "CorruptImage",
    "Decoder",
    "ProcessedImage",
    "check_pixels",
    "dct_scale",
    "open_original",
    "process_image",
]

EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What Pillow raises on a malformed or truncated file, besides its own UnidentifiedImageError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, ZeroDivisionError)


class CorruptImage(PermanentError):
    """The bytes looked like an image but could not be decoded (truncated, corrupt)."""


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    kind: ImageKind
    width: int
    height: int
    """The upright size (after the EXIF orientation)."""
    variants: tuple[RenderedVariant, ...]
    """In the order the specs were given."""


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Raise ``PayloadTooLarge`` when ``width``×``height`` is over ``max_pixels``."""
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"image declares {width}×{height} = {width * height / 1e6:.1f} megapixels, "
            f"over the limit of {max_pixels / 1e6:.1f}",
            details={"width": width, "height": height, "maxPixels": max_pixels},
        )


Decoder = Callable[[bytes, ImageKind], Image.Image]
"""Opens an original's bytes with the decoder of the sniffed format, lazily (Pillow's way: the
header now, the pixels on ``load``); raises what :func:`PIL.Image.open` raises."""


def open_original(data: bytes, kind: ImageKind) -> Image.Image:
    """The :data:`Decoder` the pipeline uses: Pillow, the sniffed format's plugin only."""
    return Image.open(io.BytesIO(data), formats=[kind.name])


def process_image(
    data: bytes,
    specs: Sequence[VariantSpec],
    *,
    max_pixels: int,
    keep_metadata: bool = False,
    decoder: Decoder = open_original,
    budget: MemoryBudget = SOURCE_BUDGET,
) -> ProcessedImage:
    """Decode ``data`` once (one ``decoder`` call) and render every variant of ``specs`` (see the
    module docstring), within ``budget`` (:mod:`.budget`): the source's share from just before its
    pixels are decoded until it is reduced to the first variant and freed, the render's to the end."""
    sniffed = sniff(data)
    if sniffed.width is not None and sniffed.height is not None:
        check_pixels(sniffed.width, sniffed.height, max_pixels)
    try:
        image = decoder(data, sniffed.kind)
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(str(exc)) from None
    except (Image.UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise CorruptImage(f"cannot read the {sniffed.kind.name} header: {exc}") from None
    with image:
        check_pixels(image.width, image.height, max_pixels)
        return _render(image, sniffed.kind, specs, keep_metadata, budget)


def _render(
    image: Image.Image, kind: ImageKind, specs: Sequence[VariantSpec], keep_metadata: bool, budget: MemoryBudget
) -> ProcessedImage:
    try:
        exif = image.getexif()
        orientation = int(exif.get(EXIF_ORIENTATION, 1) or 1)
    except _DECODE_ERRORS:
        exif, orientation = Image.Exif(), 1
    swaps = orientation in _SWAPS_AXES
    upright = (image.height, image.width) if swaps else image.size
    plans = plan_variants(specs, *upright)
    icc = image.info.get("icc_profile") or None
    kept_exif = _kept_exif(exif) if keep_metadata else None
    xmp = image.info.get("xmp") if keep_metadata else None

    full, dct = image.size, 1
    if kind is ImageKind.JPEG and plans[0].scale < 1:
        factor = dct_scale(1 / plans[0].scale)
        if factor > 1:
            mode = image.mode if image.mode in ("RGB", "L", "CMYK") else None
            image.draft(mode, (image.width // factor, image.height // factor))
            scaled = (-(-full[0] // factor), -(-full[1] // factor))  # libjpeg rounds up
            dct = factor if image.size == scaled else 1
    decoding = decode_bytes(image, full)
    rendering = render_bytes(*plans[0].resized, alpha=image.has_transparency_data)
    with budget.held(decoding + rendering) as holding:  # both at once: two waits could deadlock
        try:
            image.load()
        except _DECODE_ERRORS as exc:
            raise CorruptImage(f"cannot decode the {kind.name} image: {exc}") from None
        first = _first_variant(_drop_partial_blocks(image, full, dct), icc, plans[0], swaps, orientation)
        if first is not image:
            image.close()  # the source's pixels are needed no more: free them before the encodes
        holding.give_back(decoding)
        return _encode_all(first, plans, upright, kind, specs, kept_exif, xmp)


def _encode_all(
    first: Image.Image,
    plans: Sequence[VariantGeometry],
    upright: tuple[int, int],
    kind: ImageKind,
    specs: Sequence[VariantSpec],
    kept_exif: bytes | None,
    xmp: bytes | str | None,
) -> ProcessedImage:
    # Each variant is encoded on the encoder threads as soon as its pixels exist, while this
    # thread resizes the next one from it (the encoders only read it). A small source gives
    # several variants the same pixels: those are encoded once.
    encoding: dict[tuple[int, tuple[int, int, int, int] | None, OutputFormat, int], Future[RenderedVariant]] = {}
    names: list[tuple[str, tuple[int, tuple[int, int, int, int] | None, OutputFormat, int]]] = []
    previous: Image.Image | None = None
    try:
        for plan in plans:
            working = first if previous is None else _from_larger(previous, plan.resized)
            working.info = {}  # metadata was read above; nothing of it may reach an output
            previous = working
            key = (id(working), plan.crop, plan.spec.format, plan.spec.quality)
            if key not in encoding:
                out = working.crop(plan.crop) if plan.crop is not None else working
                encoding[key] = _encoders().submit(encode_variant, out, plan.spec, kept_exif, xmp)
            names.append((plan.spec.name, key))
        rendered = {name: dataclasses.replace(encoding[key].result(), name=name) for name, key in names}
    finally:
        futures.wait(encoding.values())  # never leave an encoder working after an error
    return ProcessedImage(kind, upright[0], upright[1], tuple(rendered[s.name] for s in specs))


def _from_larger(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A later variant's pixels from the variant before it (``image`` itself when the size is the
    same): reduced with libvips' arithmetic, or with Pillow's Lanczos where that does not apply
    (an axis not reduced, or reduced 4× or more)."""
    if image.size == size:
        return image
    return vips_reduce.resize(image, size) or pillow_resample.resize(image, size)


def _first_variant(
    decoded: Image.Image, icc: bytes | None, plan: VariantGeometry, swaps: bool, orientation: int
) -> Image.Image:
    """The largest variant's pixels from the decoded source: mode normalised, resized (sides in
    stored order), turned upright, in sRGB."""
    base, icc = normalise_mode(decoded, icc)
    stored_size = plan.resized[::-1] if swaps else plan.resized
    shrink = _uniform_shrink(base.size, plan, swaps)
    working = _reduce_like_sharp(base, stored_size, shrink) or pillow_resample.resize(
        base, stored_size, stripes=_stripes(base), shrink=shrink, run=_encoders().submit
    )
    if orientation in _TRANSPOSE:
        working = working.transpose(_TRANSPOSE[orientation])
    if icc is not None:
        working = to_srgb(working, icc)
    return working


def _drop_partial_blocks(image: Image.Image, full: tuple[int, int], factor: int) -> Image.Image:
    """A JPEG decoded at 1/``factor`` keeps only its whole blocks, as libvips' loader does (libjpeg
    rounds the scaled sides up, libvips crops them down): sharp resizes that image, and so must we
    to give its pixels."""
    kept = (full[0] // factor, full[1] // factor)
    return image if factor == 1 or image.size == kept else image.crop((0, 0, *kept))


def _reduce_like_sharp(image: Image.Image, size: tuple[int, int], shrink: float | None) -> Image.Image | None:
    """``image`` reduced to ``size`` with libvips' arithmetic (:mod:`.vips_reduce`), or ``None``
    where that does not apply (no shrink, a mode or factor it does not reproduce, a source over
    :data:`_EXACT_MAX_PIXELS`)."""
    if shrink is None or image.width * image.height > _EXACT_MAX_PIXELS:
        return None
    return vips_reduce.reduce(image, size, shrink, run=_encoders().submit)


_EXACT_MAX_PIXELS = 24_000_000
"""Above this (after DCT scaling) the float32 bands the exact reduction works in cost more memory
than matching sharp's last bit is worth: Pillow resamples instead."""


def _uniform_shrink(source: tuple[int, int], plan: VariantGeometry, swaps: bool) -> float | None:
    """The one factor sharp would shrink ``source`` (as decoded, perhaps DCT-scaled; sides in
    stored order) by for ``plan``'s box: the larger of the two sides' for ``fit``, the smaller
    for ``cover``. ``None`` when the plan does not shrink (never upscaled: nothing to match)."""
    if plan.scale >= 1:
        return None
    box_w, box_h = (plan.spec.height, plan.spec.width) if swaps else (plan.spec.width, plan.spec.height)
    factors = (source[0] / box_w, source[1] / box_h)
    return max(factors) if plan.spec.fit is Fit.FIT else min(factors)


def _stripes(image: Image.Image) -> int:
    """How many bands the first (largest) resize is cut into: one per encoder thread for a
    source of a megapixel or more, else one."""
    return _ENCODER_THREADS if image.width * image.height >= 1_000_000 else 1


@functools.cache
def _encoders() -> ThreadPoolExecutor:
    """The threads variants are encoded on, one per core, shared by every image of the process.
    Pillow releases the GIL while it encodes, so one image's variants are encoded at once."""
    return ThreadPoolExecutor(max_workers=_ENCODER_THREADS, thread_name_prefix="media-encode")


_ENCODER_THREADS = max(2, os.cpu_count() or 2)


def dct_scale(shrink: float) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) to decode at, for a largest variant ``shrink`` times
    smaller than the image: the largest one at most ``shrink``, halved when ``shrink`` rounds down
    to it (the rule of libvips/sharp's shrink-on-load), so the Lanczos step after it always has a
    real reduction to do. Scaling to just above the target (2.04× with scale 2, then Lanczos by
    1.02) leaves the DCT's softness and aliasing in the output: measured against a full decode,
    SSIM 0.954 where full decoding gives 0.974 (bench/media_vs_sharp's reference)."""
    factor = next((f for f in (8, 4, 2) if shrink >= f), 1)
    if factor > 1 and int(shrink) == factor:
        factor //= 2
    return factor


def _kept_exif(exif: Image.Exif) -> bytes | None:
    """The EXIF to keep, its orientation reset (the pixels are upright); ``None`` if unreadable."""
    if not exif:
        return None
    try:
        exif[EXIF_ORIENTATION] = 1
        return exif.tobytes()
    except _DECODE_ERRORS:
        return None
