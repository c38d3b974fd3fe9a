"""Which source lines, with which weights, make each output line of a libvips Lanczos-3 reduction.

As ``vips_reducev`` and ``vips_reduceh`` (libvips 8.17) place them: the output side is
``round(side / factor)``; the sampling grid is centred (``(1 + extra) / 2 - 1`` offset); each
output line has a position ``Y`` whose integer part picks the first source line and whose
fraction, in 64ths, one of 65 masks of ``2 * rint(3 * factor) + 1`` points
(``vips_reduce_make_mask``: Lanczos-3 normalised to sum 1, then truncated to 12-bit fixed point);
``Y`` is accumulated by repeated addition, restarting every ``strip`` lines, so the rare positions
that fall on a 1/128 boundary round as libvips' do. :func:`plan` gives them as blocks of output
lines, each one float32 matrix of the masks / 4096 over the source lines the block reads.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["Block", "plan"]

_SUBPIXELS = 64  # VIPS_TRANSFORM_SCALE: mask positions per source pixel
_ONE = 4096  # VIPS_INTERPOLATE_SCALE: the masks' fixed point


Block = tuple[int, int, int, int, np.ndarray]


@functools.lru_cache(maxsize=64)
def plan(side: int, factor: float, strip: int, size: int) -> tuple[int, list[Block]]:
    """The output side and, per block of output lines, ``(first, last, low, high, weights)``:
    output lines ``first..last`` (``size`` a block) are ``weights`` (float32, integer masks / 4096) times
    source lines ``low..high``. ``strip``: positions restart every ``strip`` lines (0: never).

    A block's weights are zero outside each line's mask: the smaller the block, the fewer zeros are
    multiplied, at one matrix product more a block."""
    out = int(side / factor + 0.5)
    offset = (1 + (out * factor - side)) / 2.0 - 1
    points, masks = _masks(factor)
    # Each strip's positions: its first one, then the factor added again and again (libvips'
    # order of additions, so the same roundings): one row of a cumulative sum each.
    length = strip or out
    strips = -(-out // length)
    steps = np.full((strips, length), factor)
    starts = np.arange(strips) * length
    steps[:, 0] = (starts + 0.5) * factor - 0.5 - offset
    positions = np.cumsum(steps, axis=1).ravel()[:out]
    first_line = positions.astype(np.int64) - (math.ceil(points / 2.0) - 1)
    which = (((positions * (_SUBPIXELS * 2)).astype(np.int64) & (_SUBPIXELS * 2 - 1)) + 1) >> 1
    # Every block's weights at once, in one array of blocks (a Python loop of small numpy calls
    # per block took 2-4 ms a plan, and an image takes six plans).
    lines = np.clip(first_line[:, None] + np.arange(points), 0, side - 1)
    firsts = np.arange(0, out, size)
    lows = np.minimum.reduceat(lines.min(axis=1), firsts)
    highs = np.maximum.reduceat(lines.max(axis=1), firsts) + 1
    block = np.arange(out) // size
    weights = np.zeros((len(firsts), size, int((highs - lows).max())), np.float32)
    targets = (block[:, None], (np.arange(out) % size)[:, None], lines - lows[block][:, None])
    np.add.at(weights, targets, masks[which])
    weights *= 1 / _ONE  # exact (a power of two): the sums come out already shifted
    blocks = []
    for index, (first, low, high) in enumerate(zip(firsts.tolist(), lows.tolist(), highs.tolist(), strict=True)):
        last = min(out, first + size)
        blocks.append((first, last, low, high, weights[index, : last - first, : high - low]))
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
