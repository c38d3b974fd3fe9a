"""Lanczos-3 resampling with Pillow, where :mod:`.vips_reduce` does not apply (an axis not reduced,
a reduction of 4× or more, a mode it does not reproduce, a source too big for its float32 bands).

As libvips resamples: premultiplied when there is alpha, the vertical pass before the horizontal
one, and with one shrink factor the sampling grid centred on the image with its edges extended.
A big image is resampled in bands of rows at once, on the threads of the ``run`` it is given.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from concurrent.futures import Future

from PIL import Image

__all__ = ["Box", "resize"]

Run = Callable[..., "Future[Image.Image]"]
"""An executor's ``submit``: where bands after the first are resampled."""


def resize(
    image: Image.Image,
    size: tuple[int, int],
    *,
    stripes: int = 1,
    shrink: float | None = None,
    run: Run | None = None,
) -> Image.Image:
    """``image`` resampled to ``size`` (Lanczos-3), in premultiplied alpha when it has alpha;
    with ``stripes`` > 1 cut into that many bands of rows, resampled at once on ``run``'s threads
    and this one (without ``run``, one after the other here).

    ``shrink``: one factor for both axes, the sampling grid centred on the image, as libvips
    samples (sharp gives it one factor; the output sides are that factor rounded, and the grid
    is moved by half of what the rounding left over, at the edges extended). Without it each
    axis is shrunk by its own exact factor, edge to edge."""
    if image.size == size and shrink is None:
        return image
    box = None
    if shrink is not None:
        image, box = _centred_box(image, size, shrink)
    if image.mode in ("RGBA", "LA"):
        # Resampling straight alpha would pull the colour of invisible pixels into visible edges.
        premultiplied = image.convert("RGBa" if image.mode == "RGBA" else "La")
        return _resample(premultiplied, size, stripes, box, run).convert(image.mode)
    return _resample(image, size, stripes, box, run)


Box = tuple[float, float, float, float]


def _centred_box(image: Image.Image, size: tuple[int, int], shrink: float) -> tuple[Image.Image, Box]:
    """The source region (x0, y0, x1, y1) that ``size`` pixels of ``shrink`` source pixels
    each cover, centred; ``image`` first extended by copies of its edges where it reaches outside."""
    spans = (size[0] * shrink, size[1] * shrink)
    offsets = [(side - span) / 2 for side, span in zip(image.size, spans, strict=True)]
    pads = [math.ceil(-offset) if offset < 0 else 0 for offset in offsets]
    if any(pads) and image.width * image.height > _EXTEND_MAX_PIXELS:
        # A copy of a huge source costs more memory than matching sharp's edge pixels is worth:
        # the grid is clamped inside the image (its outermost row or column slightly off).
        x0, y0 = (max(0.0, o) for o in offsets)
        return image, (x0, y0, min(image.width, x0 + spans[0]), min(image.height, y0 + spans[1]))
    if any(pads):
        image = _extend_edges(image, pads[0], pads[1])
    x0, y0 = offsets[0] + pads[0], offsets[1] + pads[1]
    return image, (x0, y0, x0 + spans[0], y0 + spans[1])


_EXTEND_MAX_PIXELS = 16_000_000
"""A source over this is not copied to extend its edges (see :func:`_centred_box`)."""


def _extend_edges(image: Image.Image, px: int, py: int) -> Image.Image:
    """``image`` with ``px`` columns and ``py`` rows more on each side, copies of its edge pixels."""
    width, height = image.size
    out = Image.new(image.mode, (width + 2 * px, height + 2 * py))
    out.paste(image, (px, py))
    nearest = Image.Resampling.NEAREST
    if py:
        out.paste(image.crop((0, 0, width, 1)).resize((width, py), nearest), (px, 0))
        out.paste(image.crop((0, height - 1, width, height)).resize((width, py), nearest), (px, py + height))
    if px:
        full = out.height
        out.paste(out.crop((px, 0, px + 1, full)).resize((px, full), nearest), (0, 0))
        out.paste(out.crop((px + width - 1, 0, px + width, full)).resize((px, full), nearest), (px + width, 0))
    return out


def _resample(image: Image.Image, size: tuple[int, int], stripes: int, box: Box | None, run: Run | None) -> Image.Image:
    """Bands after the first go to ``run`` while this thread does the first; a band no thread has
    started by then is done here instead of waited for. Each band reads every
    source row its output rows need (Pillow's box resampling takes the kernel's support from
    outside the box), so the bands join seamlessly: the pixels are one call's, but for a rare
    one off by 1 where the band's box rounds its scale differently in the last bit."""
    box = box or (0.0, 0.0, float(image.width), float(image.height))
    height = size[1]
    stripes = max(1, min(stripes, height // _MIN_STRIPE_ROWS))
    if stripes == 1:
        return _resample_rows(image, size, box, 0, height)
    bounds = [height * i // stripes for i in range(stripes + 1)]
    bands = list(itertools.pairwise(bounds))
    later = [run(_resample_rows, image, size, box, top, bottom) if run else None for top, bottom in bands[1:]]
    out = Image.new(image.mode, size)
    out.paste(_resample_rows(image, size, box, *bands[0]), (0, 0))
    for band, (top, bottom) in zip(later, bands[1:], strict=True):
        if band is None or band.cancel():
            out.paste(_resample_rows(image, size, box, top, bottom), (0, top))
        else:
            out.paste(band.result(), (0, top))
    return out


def _resample_rows(image: Image.Image, size: tuple[int, int], box: Box, top: int, bottom: int) -> Image.Image:
    """Output rows ``top``..``bottom`` of ``box`` of ``image`` resampled to ``size``: the vertical
    pass first, then the horizontal one, each rounded to 8 bits (the order libvips uses; Pillow's
    one call does horizontal first, which rounds differently: fewer pixels equal to sharp's)."""
    width, height = size
    x0, y0, x1, y1 = box
    step = (y1 - y0) / height
    rows = image
    if (y0, y1) != (0, image.height) or image.height != height or top or bottom != height:
        band = (0.0, y0 + top * step, float(image.width), y0 + bottom * step)
        rows = image.resize((image.width, bottom - top), Image.Resampling.LANCZOS, box=band)
    if (x0, x1) != (0, image.width) or rows.width != width:
        rows = rows.resize((width, bottom - top), Image.Resampling.LANCZOS, box=(x0, 0.0, x1, float(bottom - top)))
    return rows


_MIN_STRIPE_ROWS = 128
"""Bands are at least this many output rows: smaller ones cost more in threads than they save."""
