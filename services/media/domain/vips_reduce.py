"""Lanczos-3 reduction with libvips' own arithmetic, so a resized image has sharp's pixels.

sharp resizes with ``vips_resize`` (libvips 8.17): ``vips_reducev`` then ``vips_reduceh``, each a
Lanczos-3 convolution rounded to 8 bits. Two correct Lanczos-3 resamplers differ in the last bit
on a quarter of the pixels, and a WebP encoder turns those into visibly different files (SSIM
~0.97 between them); with the same pixels Pillow's libwebp writes sharp's file byte for byte.
So this module repeats libvips' steps exactly:

- the output side, the centred sampling grid (its edges extended by copies of the outermost
  pixels), each output line's first source line and 12-bit fixed-point Lanczos-3 mask are
  libvips' (:mod:`.vips_plan`); positions restart down the image at the top of every 10-row
  strip (the line cache behind ``vips_reducev``), along a row never;
- each pass sums the integer products, adds 2048 and shifts right by 12, then clips to 0..255;
- an image with alpha is premultiplied first and unpremultiplied after, in 32-bit floats and
  truncated back to 8 bits between (sharp's ``premultiply().cast()``, ``unpremultiply().cast()``).

The sums are done as float32 matrix products over blocks of lines, with the masks scaled by
1/4096 (exact: a power of two): every product and partial sum is an integer below 2**24 times
2**-12, so float32 holds it exactly whatever the order of summation.
A reduction of 4× or more, which libvips starts with a box shrink, is not reproduced:
:func:`reduce` answers ``None`` and the caller resamples its own way.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from services.media.domain.pixel_memory import STORED_BANDS, fill_unused_bytes, image_of, image_planes, shared_pixels
from services.media.domain.vips_plan import Block, plan

__all__ = ["reduce", "resize", "sharp_size"]

_STRIP = 10  # vips_reducev's output line cache: row positions restart every 10 rows
_BLOCK = 6
"""Output lines per matrix product (see :func:`.vips_plan.plan`): a reduction took 3-10 % less CPU
at 6 than at 8 (12 and 16: 10-25 % more; 4: as 6) on the shared test photos."""
_CAST_BYTES = 2 * 1024 * 1024  # about how much float32 of source lines a pass converts at once
_GAP = 2.0  # vips_resize's default reducing gap: at this ratio or more it box-shrinks first
_MODES = frozenset({"L", "LA", "RGB", "RGBA"})


def sharp_size(side: int, shrink: float) -> int:
    """The side libvips gives ``side`` reduced by ``shrink`` (``VIPS_ROUND_UINT``)."""
    return int(side / _residual(shrink) + 0.5)


def _residual(shrink: float) -> float:
    # sharp passes the scale 1/shrink to vips_resize, which reduces by 1/scale again
    return 1.0 / (1.0 / shrink)


def reduce(
    image: Image.Image, size: tuple[int, int], shrink: float, run: Callable[..., object] | None = None
) -> Image.Image | None:
    """``image`` reduced by ``shrink`` on both axes as sharp reduces it, or ``None`` when its mode,
    the factor (≥ 2 × the gap: libvips box-shrinks first) or the resulting size (not ``size``)
    is outside what this reproduces. ``run``: an executor's ``submit``, to reduce bands at once."""
    factor = _residual(shrink)
    width, height = image.size
    if (sharp_size(width, shrink), sharp_size(height, shrink)) != size:
        return None
    if any(math.floor(side / out / _GAP) > 1 for side, out in zip(image.size, size, strict=True)):
        return None
    return _reduce_image(image, (factor, factor), run)


def resize(image: Image.Image, size: tuple[int, int], run: Callable[..., object] | None = None) -> Image.Image | None:
    """``image`` reduced to exactly ``size``, each axis by its own factor (its side over the new
    one), with the same arithmetic as :func:`reduce`: for a variant made from a larger one, a
    Lanczos-3 reduction at less CPU than Pillow's (the passes are float32 matrix products).
    ``None`` when its mode or a factor (each must be over 1 and under 2 × the gap) is outside
    what :func:`reduce` does."""
    factors = (image.width / size[0], image.height / size[1])
    return _reduce_image(image, factors, run)


def _reduce_image(
    image: Image.Image, factors: tuple[float, float], run: Callable[..., object] | None
) -> Image.Image | None:
    """``image`` reduced by ``factors`` (columns, rows), or ``None`` outside what this reproduces.

    Where the image is one block, both passes work on a pixel's bytes side by side, as Pillow
    stores them: the vertical pass reads the image in place a row at a time, the horizontal one
    whole pixels of its columns, so every byte is converted to float32 from a contiguous run, once.
    Band by band the vertical pass would convert one byte in four and read the source once a band
    (over the shared test photos 43 ms an image against 33; the horizontal passes, which reduce
    RGB's padding byte too, 19 against 16). Each pass is cut into :data:`_PARTS` (one a thread)."""
    if image.mode not in _MODES or min(factors) <= 1.0 or max(factors) >= 2 * _GAP:
        return None
    out_rows, vertical = plan(image.height, factors[1], _STRIP, _BLOCK)
    out_columns, horizontal = plan(image.width, factors[0], 0, _BLOCK)
    stored = shared_pixels(image) if image.mode != "L" else None
    if stored is None:
        return _reduce_bands(image, (vertical, horizontal), (out_columns, out_rows), run)
    width = image.width
    alpha = stored[:, :, 3] if image.mode in ("LA", "RGBA") else None
    source = stored.reshape(image.height, width * 4)
    rows = _lines(out_rows, width * 4)
    _each(
        [
            functools.partial(
                _reduce_lines,
                source[:, 4 * a : 4 * b],
                vertical,
                rows[:, 4 * a : 4 * b],
                None if alpha is None else alpha[:, a:b],
            )
            for a, b in _parts(width)
        ],
        run,
    )
    words = rows.view(np.uint32).T  # its lines: the columns of whole pixels
    reduced = Image.new(image.mode, (out_columns, out_rows), None)  # every byte is written below: no fill
    target = shared_pixels(reduced)
    if target is None:  # rows not in one block (not for a variant's size: Pillow's blocks are 16 MB)
        columns = _lines(out_columns, out_rows * 4)
        _each([functools.partial(_reduce_lines, words, part, columns) for part in _parts_of(horizontal)], run)
        pixels = columns.reshape(out_columns, out_rows, 4)
        if alpha is not None:
            _unpremultiply(pixels)
        return image_of(pixels, image.mode)
    # Each group of output columns goes straight into the new image, transposed while it is in the
    # cache: no image-sized buffer of columns to allocate, fill and transpose after.
    into = target.view(np.uint32)[..., 0]
    _each([functools.partial(_reduce_lines, words, part, None, transposed=into) for part in _parts_of(horizontal)], run)
    if alpha is not None:
        _unpremultiply(target)
    fill_unused_bytes(target, image.mode)
    return reduced


def _reduce_bands(
    image: Image.Image,
    passes: tuple[list[Block], list[Block]],
    size: tuple[int, int],
    run: Callable[..., object] | None,
) -> Image.Image:
    """:func:`_reduce_image` band by band (one a thread): for a greyscale image, or one whose rows
    are not one block (read through copies of its bands)."""
    planes = image_planes(image)
    out_columns, out_rows = size
    pixel_bytes = 1 if image.mode == "L" else 4
    pixels = _lines(out_columns, out_rows * pixel_bytes).reshape(out_columns, out_rows, pixel_bytes)
    alpha = planes[-1] if len(planes) in (2, 4) else None

    def band(plane: np.ndarray, slot: int, premultiply: np.ndarray | None) -> None:
        rows = _lines(out_rows, plane.shape[1])
        _reduce_lines(plane, passes[0], rows, premultiply)
        _reduce_lines(rows.T, passes[1], pixels[:, :, slot])

    colours = len(planes) - 1 if alpha is not None else len(planes)
    slots = STORED_BANDS[image.mode]
    _each(
        [
            functools.partial(band, plane, slot, alpha if index < colours else None)
            for index, (plane, slot) in enumerate(zip(planes, slots, strict=True))
        ],
        run,
    )
    if alpha is not None:
        _unpremultiply(pixels)
    return image_of(pixels, image.mode)


_PARTS = 3
"""How many parts each pass of :func:`_reduce_image` is cut into, done at once on the caller's thread
and ``run``'s."""


def _parts_of(blocks: list[Block]) -> list[list[Block]]:
    """``blocks`` cut into up to :data:`_PARTS` consecutive parts."""
    return [blocks[a:b] for a, b in _parts(len(blocks))]


def _parts(count: int) -> list[tuple[int, int]]:
    """``0..count`` cut into up to :data:`_PARTS` consecutive ranges, none empty."""
    bounds = sorted({count * i // _PARTS for i in range(_PARTS + 1)})
    return list(itertools.pairwise(bounds))


def _each(jobs: list[Callable[[], object]], run: Callable[..., object] | None) -> None:
    """Every job: all but the first on ``run`` (an executor's ``submit``), the first here; a job
    no thread has started by then is done here too."""
    if run is None or len(jobs) == 1:
        for job in jobs:
            job()
        return
    later = [run(job) for job in jobs[1:]]
    jobs[0]()
    for future, job in zip(later, jobs[1:], strict=True):
        if future.cancel():  # type: ignore[attr-defined]
            job()
        else:
            future.result()  # type: ignore[attr-defined]


def _lines(count: int, length: int) -> np.ndarray:
    """Room for ``count`` uint8 lines of ``length``, each starting an odd multiple of 64 bytes
    after the one before. The next pass reads these lines transposed, a byte from each line in
    turn: lines 4096 bytes apart (a 4096-pixel-wide photo) all fall in the same few cache sets
    and evict each other, and its horizontal pass took 3× the CPU (infinite_sea.jpg's first
    reduction: 215 -> 128 ms)."""
    stride = ((length + 63) // 64 | 1) * 64
    return np.empty((count, stride), np.uint8)[:, :length]


def _reduce_lines(
    source: np.ndarray,
    blocks: list[Block],
    out: np.ndarray | None,
    alpha: np.ndarray | None = None,
    transposed: np.ndarray | None = None,
) -> None:
    """One pass: ``out``'s lines (along the first axis) are ``blocks``' weights times ``source``'s
    lines (uint8, perhaps a strided view; with ``alpha``, premultiplied by it first), rounded.
    With ``transposed`` (uint32 pixels, lines × pixels) instead of ``out``, each line of whole
    pixels is written there as a column, a group of lines at a time.

    The source lines are converted to float32 a group of blocks at a time (about
    :data:`_CAST_BYTES`), so the lines neighbouring blocks share are converted once; the blocks
    of a group are multiplied into one buffer, rounded into ``out`` once per group. Every group
    reuses the same buffers."""
    width = source.shape[1] * source.itemsize  # a line's bytes, in and out
    groups = _groups(blocks, max(1, _CAST_BYTES // (4 * width)))
    span = max(group[-1][3] - group[0][2] for group in groups)
    lines = np.empty((span, width), np.float32)
    sums = np.empty((max(group[-1][1] - group[0][0] for group in groups), width), np.float32)
    rounded = np.empty((len(sums), width), np.uint8) if out is None else out  # one group's, if transposed
    scale = np.empty((span, width), np.float32) if alpha is not None else None
    words = np.empty((span, source.shape[1]), np.uint32) if source.dtype == np.uint32 else None
    for group in groups:
        start, end = group[0][2], group[-1][3]
        converted = lines[: end - start]
        if words is None:
            np.copyto(converted, source[start:end], casting="unsafe")
        else:  # whole pixels gathered first (a transposed copy), then their bytes converted
            np.copyto(words[: end - start], source[start:end])
            np.copyto(converted, words[: end - start].view(np.uint8), casting="unsafe")
        # An opaque line's colours are multiplied by float32(255 / 255) = 1: left as they are.
        if alpha is not None and scale is not None and alpha[start:end].min() < _OPAQUE:
            factors = scale[: end - start]
            if alpha.shape[1] == width:
                np.copyto(factors, alpha[start:end], casting="unsafe")
                np.divide(factors, _ALPHA_MAX, out=factors)  # float32(alpha / 255): see _ALPHA_MAX
            else:  # a pixel's bytes side by side: its colours by float32(alpha / 255), its alpha by 1
                np.take(
                    _PIXEL_PREMULTIPLY, alpha[start:end], axis=0, out=factors.reshape(end - start, -1, 4), mode="clip"
                )
            np.multiply(converted, factors, out=converted)
            np.floor(converted, out=converted)
        base, top = group[0][0], group[-1][1]
        for first, last, low, high, weights in group:
            np.matmul(weights, converted[low - start : high - start], out=sums[first - base : last - base])
        if transposed is None:
            _round_into(sums[: top - base], rounded[base:top])
        else:
            _round_into(sums[: top - base], rounded[: top - base])
            transposed[:, base:top] = rounded[: top - base].view(np.uint32).T


def _groups(blocks: list[Block], rows: int) -> list[list[Block]]:
    """Consecutive blocks grouped so that each group's source lines (its first block's ``low`` to
    its last's ``high``, increasing) are at most ``rows`` where more than one block fits."""
    groups: list[list[Block]] = []
    for block in blocks:
        if groups and block[3] - groups[-1][0][2] <= rows:
            groups[-1].append(block)
        else:
            groups.append([block])
    return groups


def _round_into(sums: np.ndarray, out: np.ndarray) -> None:
    """``(sum + 2048) >> 12`` clipped to 0..255 into ``out`` (uint8), exact. The weights are the
    masks scaled by 1/4096 (see :func:`.vips_plan.plan`), so ``sums`` hold ``sum / 4096`` exactly: adding
    0.5 is exact too, and the cast's truncation is the floor on the clipped values (none below 0).
    The clip writes ``out`` itself (one pass over the sums fewer than clipping them in place)."""
    sums += 0.5
    np.clip(sums, 0, 255, out=out, casting="unsafe")


# libvips premultiplies an 8-bit colour by float32(alpha / 255) in float32 and casts the product
# back to 8 bits by truncation; it unpremultiplies by float32(255 / alpha) (0 where alpha is 0),
# clipped to 255 and truncated again. float32 division gives float32(alpha / 255) for every alpha
# (correctly rounded; tested), and costs less than looking the factor up per pixel.
_ALPHA_MAX = np.float32(255)
_OPAQUE = 255
with np.errstate(divide="ignore"):
    _UNPREMULTIPLY_SCALE = np.where(np.arange(256) == 0, 0.0, 255.0 / np.arange(256)).astype(np.float32)


_PIXEL_PREMULTIPLY = np.stack([np.arange(256, dtype=np.float32) / _ALPHA_MAX] * 3 + [np.ones(256, np.float32)], axis=-1)
"""What each byte of a pixel (LA and RGBA alike: three colour bytes, then alpha) is multiplied by, per alpha."""


_PIXEL_UNPREMULTIPLY = np.stack([_UNPREMULTIPLY_SCALE] * 3 + [np.ones(256, np.float32)], axis=-1)
"""What each byte of a reduced pixel is multiplied by, per alpha: its colours by float32(255 / alpha),
its alpha by 1 (unchanged)."""


def _unpremultiply(pixels: np.ndarray) -> None:
    """``pixels`` (lines × pixels × 4 bytes, alpha last) unpremultiplied in place: each colour
    byte times ``float32(255 / alpha)``, clipped to 255, truncated. A pixel's bytes are done
    together, a few lines at a time (band by band, each strided band cost 5× as much); lines
    with no pixel less than opaque are skipped."""
    step = max(1, _CAST_BYTES // (16 * pixels.shape[1]))
    for start in range(0, pixels.shape[0], step):
        chunk = pixels[start : start + step]
        if chunk[..., 3].min() == _OPAQUE:
            continue  # times float32(255 / 255) = 1: unchanged
        scale = np.take(_PIXEL_UNPREMULTIPLY, chunk[..., 3], axis=0)
        scaled = chunk.astype(np.float32)
        np.multiply(scaled, scale, out=scaled)
        np.minimum(scaled, 255, out=scaled)
        np.copyto(chunk, scaled, casting="unsafe")


def _one_blas_thread() -> None:
    """Keep numpy's bundled OpenBLAS to the calling thread. The pipeline already reduces one band
    per core; OpenBLAS' own threads, spinning while they wait, cost 5× the CPU on a busy machine
    (measured: 1,054 against 180 ms for one image). Best effort: another BLAS is left as it is."""
    libraries = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for library in sorted(libraries.glob("libscipy_openblas*.so")):
        try:
            handle = ctypes.CDLL(str(library))
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads"):
            setter = getattr(handle, name, None)
            if setter is not None:
                setter(1)
                return


_one_blas_thread()
