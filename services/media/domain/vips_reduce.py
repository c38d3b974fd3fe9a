"""Lanczos-3 reduction with libvips' own arithmetic, so a resized image has sharp's pixels.

sharp resizes with ``vips_resize`` (libvips 8.17): ``vips_reducev`` then ``vips_reduceh``, each a
Lanczos-3 convolution rounded to 8 bits. Two correct Lanczos-3 resamplers differ in the last bit
on a quarter of the pixels, and a WebP encoder turns those into visibly different files (SSIM
~0.97 between them); with the same pixels Pillow's libwebp writes sharp's file byte for byte.
So this module repeats libvips' steps exactly:

- the output side is ``round(side / shrink)``; the sampling grid is centred (``(1 + extra) / 2 - 1``
  offset) and the edges are extended by copies of the outermost pixels;
- each output row (column) has a position ``Y``: its integer part picks the first source row, its
  fraction, in 64ths, one of 65 precomputed masks of ``2 * rint(3 * shrink) + 1`` points
  (``vips_reduce_make_mask``: Lanczos-3 normalised to sum 1, then truncated to 12-bit
  fixed point);
- ``Y`` is accumulated by repeated addition, as libvips does: along a row from its start, and
  down the image from the top of every 10-row strip (the line cache behind ``vips_reducev``), so
  the rare positions that fall on a 1/128 boundary round as libvips' do;
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
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["image_planes", "reduce", "resize", "sharp_size"]

_SUBPIXELS = 64  # VIPS_TRANSFORM_SCALE: mask positions per source pixel
_ONE = 4096  # VIPS_INTERPOLATE_SCALE: the masks' fixed point
_STRIP = 10  # vips_reducev's output line cache: row positions restart every 10 rows
_BLOCK = 8  # output lines per matrix product: its weights are mostly non-zero (see _reduce_plane)
_CAST_BYTES = 2 * 1024 * 1024  # about how much float32 of source lines a pass converts at once
_GAP = 2.0  # vips_resize's default reducing gap: at this ratio or more it box-shrinks first
_MODES = frozenset({"L", "LA", "RGB", "RGBA"})

Planes = list[np.ndarray]


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
    """``image`` reduced by ``factors`` (columns, rows), or ``None`` outside what this reproduces."""
    if image.mode not in _MODES or min(factors) <= 1.0 or max(factors) >= 2 * _GAP:
        return None
    planes = image_planes(image)
    if len(planes) in (2, 4):  # premultiplied while reduced, as sharp does
        alpha = _reduce_plane(planes[-1], factors)
        scale = _UNPREMULTIPLY_SCALE[alpha]
        colour = _each(planes[:-1], lambda plane: _reduce_plane(plane, factors, planes[-1]), run)
        reduced = [_unpremultiplied(plane, scale) for plane in colour] + [alpha]
    else:
        reduced = _each(planes, lambda plane: _reduce_plane(plane, factors), run)
    return _image_of(reduced, image.mode)


def _image_of(planes: Planes, mode: str) -> Image.Image:
    """A new ``mode`` image of ``planes`` (uint8, rows × columns, perhaps transposed views), each
    written once into the image's own memory. ``Image.fromarray(np.stack(planes, axis=-1))``
    costs four times as much (a 1600×1000 RGB image: 21 against 5 ms): a strided gather into a
    new array, then Pillow's copy of it."""
    height, width = planes[0].shape
    image = Image.new(mode, (width, height), (0,) * len(mode))  # RGB's padding byte filled as Pillow fills it
    view = _shared_pixels(image)
    if view is None:  # rows not in one block (not for a variant's size: Pillow's blocks are 16 MB)
        return Image.fromarray(planes[0] if len(planes) == 1 else np.stack(planes, axis=-1), mode)
    for plane, stored in zip(planes, _STORED_SLICES[mode], strict=True):
        view[:, :, stored] = plane[:, :, None]
    return image


def image_planes(image: Image.Image) -> Planes:
    """The bands of an L, LA, RGB or RGBA ``image`` as uint8 arrays (rows × columns), views of the
    image's own memory where it is one block (:func:`services.media.memory.allocate_images_in_one_block`),
    else copies. ``np.asarray(image)`` would copy the pixels out (``tobytes``), briefly twice over:
    for a 16-megapixel photo 100 MB and 70 ms of CPU, more than the image itself."""
    view = _shared_pixels(image)
    if view is not None:
        return [view[:, :, band] for band in _STORED_BANDS[image.mode]]
    pixels = np.asarray(image)
    return [pixels] if pixels.ndim == 2 else [pixels[:, :, band] for band in range(pixels.shape[2])]


# Pillow keeps L in one byte a pixel, LA, RGB and RGBA in four (LA as L, -, -, A; RGB padded).
_STORED_BANDS = {"L": (0,), "LA": (0, 3), "RGB": (0, 1, 2), "RGBA": (0, 1, 2, 3)}
# Where a band is written: LA's L goes to the first three bytes, as Pillow stores it.
_STORED_SLICES = {
    "L": (slice(0, 1),),
    "LA": (slice(0, 3), slice(3, 4)),
    "RGB": (slice(0, 1), slice(1, 2), slice(2, 3)),
    "RGBA": (slice(0, 1), slice(1, 2), slice(2, 3), slice(3, 4)),
}


class _ArrowArray(ctypes.Structure):
    """The Arrow C data interface's ``struct ArrowArray`` (a stable ABI), as Pillow exports an image."""


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.POINTER(_ArrowArray)),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _shared_pixels(image: Image.Image) -> np.ndarray | None:
    """``image``'s storage as a (rows, columns, bytes a pixel) array over the same memory, through
    Pillow's Arrow export (zero-copy); ``None`` where the rows are not one block. The array keeps
    the image and the export alive as long as it lives."""
    export = getattr(image, "__arrow_c_array__", None)  # Pillow 11.2 and later
    if export is None or image.mode not in _STORED_BANDS:
        return None
    try:
        schema, exported = export()
    except ValueError:  # "Image rows are not contiguous in memory": allocated in 16 MB blocks
        return None
    array = _ArrowArray.from_address(_capsule_pointer(exported, b"arrow_array"))
    pixel_bytes = 1 if image.mode == "L" else 4
    leaf = array if pixel_bytes == 1 else array.children[0].contents  # a fixed-size list of 4 bytes
    if leaf.buffers[1] is None or array.length != image.width * image.height:
        return None
    memory = (ctypes.c_uint8 * (array.length * pixel_bytes)).from_address(leaf.buffers[1] + leaf.offset)
    memory._owners = (schema, exported, image)
    return np.frombuffer(memory, np.uint8).reshape(image.height, image.width, pixel_bytes)


def _each(planes: Planes, work: Callable[[np.ndarray], np.ndarray], run: Callable[..., object] | None) -> Planes:
    """``work`` on every plane: all but the first on ``run`` (an executor's ``submit``), the first
    here; a plane no thread has started by then is done here too."""
    if run is None or len(planes) == 1:
        return [work(plane) for plane in planes]
    later = [run(work, plane) for plane in planes[1:]]
    done = [work(planes[0])]
    for future, plane in zip(later, planes[1:], strict=True):
        done.append(work(plane) if future.cancel() else future.result())  # type: ignore[attr-defined]
    return done


def _reduce_plane(plane: np.ndarray, factors: tuple[float, float], alpha: np.ndarray | None = None) -> np.ndarray:
    """One band (uint8, rows × columns, perhaps strided) reduced by ``factors`` (columns, rows):
    rows first (vips_reducev), then columns (vips_reduceh); with ``alpha`` (its plane)
    premultiplied on the way in. The answer may be a transposed view.

    Both passes are :func:`_reduce_lines`, along the first axis: the horizontal pass reads the
    vertical one's rows transposed (its lines are their columns) and answers columns × rows.
    So each multiplies blocks of :data:`_BLOCK` output lines, whose weights are mostly non-zero.
    (Reducing columns in place, ``lines @ weights.T``, needed blocks of 32 output columns to
    run fast, whose weights were ~5× more zeros than weights.)"""
    out_rows, vertical = _plan(plane.shape[0], factors[1], _STRIP, _BLOCK)
    out_columns, horizontal = _plan(plane.shape[1], factors[0], 0, _BLOCK)
    rows = _lines(out_rows, plane.shape[1])
    _reduce_lines(plane, vertical, rows, alpha)
    columns = _lines(out_columns, out_rows)
    _reduce_lines(rows.T, horizontal, columns)
    return columns.T


def _lines(count: int, length: int) -> np.ndarray:
    """Room for ``count`` uint8 lines of ``length``, each starting an odd multiple of 64 bytes
    after the one before. The next pass reads these lines transposed, a byte from each line in
    turn: lines 4096 bytes apart (a 4096-pixel-wide photo) all fall in the same few cache sets
    and evict each other, and its horizontal pass took 3× the CPU (infinite_sea.jpg's first
    reduction: 215 -> 128 ms)."""
    stride = ((length + 63) // 64 | 1) * 64
    return np.empty((count, stride), np.uint8)[:, :length]


def _reduce_lines(source: np.ndarray, blocks: list[Block], out: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """One pass: ``out``'s lines (along the first axis) are ``blocks``' weights times ``source``'s
    lines (uint8, perhaps a strided view; with ``alpha``, premultiplied by it first), rounded.

    The source lines are converted to float32 a group of blocks at a time (about
    :data:`_CAST_BYTES`), so the lines neighbouring blocks share are converted once; the blocks
    of a group are multiplied into one buffer, rounded into ``out`` once per group. Every group
    reuses the same buffers."""
    width = source.shape[1]
    groups = _groups(blocks, max(1, _CAST_BYTES // (4 * width)))
    span = max(group[-1][3] - group[0][2] for group in groups)
    lines = np.empty((span, width), np.float32)
    sums = np.empty((max(group[-1][1] - group[0][0] for group in groups), width), np.float32)
    scale = np.empty((span, width), np.float32) if alpha is not None else None
    for group in groups:
        start, end = group[0][2], group[-1][3]
        converted = lines[: end - start]
        np.copyto(converted, source[start:end], casting="unsafe")
        if alpha is not None and scale is not None:
            factors = scale[: end - start]
            np.copyto(factors, alpha[start:end], casting="unsafe")
            np.divide(factors, _ALPHA_MAX, out=factors)  # float32(alpha / 255): see _ALPHA_MAX
            np.multiply(converted, factors, out=converted)
            np.floor(converted, out=converted)
        base = group[0][0]
        for first, last, low, high, weights in group:
            np.matmul(weights, converted[low - start : high - start], out=sums[first - base : last - base])
        _round_into(sums[: group[-1][1] - base], out[base : group[-1][1]])


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
    masks scaled by 1/4096 (see :func:`_plan`), so ``sums`` hold ``sum / 4096`` exactly: adding
    0.5 is exact too, and the cast's truncation is the floor on the clipped values (none below 0)."""
    sums += 0.5
    np.clip(sums, 0, 255, out=sums)
    np.copyto(out, sums, casting="unsafe")


Block = tuple[int, int, int, int, np.ndarray]


@functools.lru_cache(maxsize=64)
def _plan(side: int, factor: float, strip: int, size: int) -> tuple[int, list[Block]]:
    """The output side and, per block of output lines, ``(first, last, low, high, weights)``:
    output lines ``first..last`` (``size`` a block) are ``weights`` (float32, integer masks / 4096) times
    source lines ``low..high``. ``strip``: positions restart every ``strip`` lines (0: never)."""
    out = int(side / factor + 0.5)
    offset = (1 + (out * factor - side)) / 2.0 - 1
    points, masks = _masks(factor)
    steps = np.full(out, factor)
    starts = np.arange(0, out, strip) if strip else np.zeros(1, np.int64)
    steps[starts] = (starts + 0.5) * factor - 0.5 - offset
    positions = np.concatenate([np.cumsum(part) for part in np.split(steps, starts[1:])])
    first_line = positions.astype(np.int64) - (math.ceil(points / 2.0) - 1)
    which = (((positions * (_SUBPIXELS * 2)).astype(np.int64) & (_SUBPIXELS * 2 - 1)) + 1) >> 1
    blocks = []
    for first in range(0, out, size):
        last = min(out, first + size)
        lines = np.clip(first_line[first:last, None] + np.arange(points), 0, side - 1)
        low, high = int(lines.min()), int(lines.max()) + 1
        weights = np.zeros((last - first, high - low), np.float32)
        targets = (np.repeat(np.arange(last - first), points), (lines - low).ravel())
        np.add.at(weights, targets, masks[which[first:last]].ravel())
        weights *= 1 / _ONE  # exact (a power of two): the sums come out already shifted
        blocks.append((first, last, low, high, weights))
    return out, blocks


@functools.lru_cache(maxsize=32)
def _masks(factor: float) -> tuple[int, np.ndarray]:
    """The point count and the 65 masks for ``factor`` (``vips_reduce_make_mask``, then
    ``(short) (mask * 4096)``), computed with libm's ``sin`` in double as libvips does."""
    points = 2 * round(3 * factor) + 1  # rint: round half to even, as Python's round
    masks = np.zeros((_SUBPIXELS + 1, points), np.float32)
    for position in range(_SUBPIXELS + 1):
        half = position / _SUBPIXELS + points / 2.0 - 1
        values = [_lanczos3((i - half) / factor) for i in range(points)]
        total = 0.0
        for value in values:
            total += value
        masks[position] = [int(value / total * _ONE) for value in values]
    return points, masks


def _lanczos3(x: float) -> float:
    if not -3 <= x <= 3:
        return 0.0
    return _sinc(x) * _sinc(x / 3)


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


# libvips premultiplies an 8-bit colour by float32(alpha / 255) in float32 and casts the product
# back to 8 bits by truncation; it unpremultiplies by float32(255 / alpha) (0 where alpha is 0),
# clipped to 255 and truncated again. float32 division gives float32(alpha / 255) for every alpha
# (correctly rounded; tested), and costs less than looking the factor up per pixel.
_ALPHA_MAX = np.float32(255)
with np.errstate(divide="ignore"):
    _UNPREMULTIPLY_SCALE = np.where(np.arange(256) == 0, 0.0, 255.0 / np.arange(256)).astype(np.float32)


def _unpremultiplied(colour: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.minimum(colour.astype(np.float32) * scale, 255).astype(np.uint8)


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
