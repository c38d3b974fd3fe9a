"""vips_reduce's blocked float32 passes give exactly the pixels of the plain integer arithmetic.

The golden files (test_vips_reduce.py) hold sharp's pixels for a few sizes; these tests hold the
blocked implementation (blocks of output lines, source lines converted a group at a time, the
horizontal pass reading the vertical one's rows transposed) to the arithmetic it stands for, over
more sizes, factors and modes: each pass one integer product of the masks with every source
line, ``(sum + 2048) >> 12`` clipped to 0..255, alpha premultiplied by ``float32(alpha / 255)``
and truncated before and unpremultiplied after, as libvips does."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from services.media.domain import vips_plan, vips_reduce

pytestmark = pytest.mark.timeout(60)

SIZES_AND_FACTORS = [
    ((427, 641), 641 / 250),
    ((97, 1603), 1.13),
    ((700, 333), 3.3),
    ((600, 900), 1.9),
    ((256, 256), 2.0),
    ((301, 517), 3.97),
]


def dense_weights(side: int, factor: float, strip: int) -> tuple[int, np.ndarray]:
    """The output side and every output line's integer mask over all ``side`` source lines
    (float64: exact for these integers), from the plan's positions and masks."""
    out, blocks = vips_plan.plan(side, factor, strip, vips_reduce._BLOCK)
    dense = np.zeros((out, side))
    for first, last, low, high, weights in blocks:
        dense[first:last, low:high] = np.rint(weights.astype(np.float64) * 4096)
    return out, dense


def integer_pass(lines: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``weights`` (outputs × lines) times ``lines`` (lines × columns), rounded as libvips rounds."""
    sums = (weights @ lines.astype(np.float64)).astype(np.int64)
    return np.clip((sums + 2048) >> 12, 0, 255).astype(np.uint8)


def plain_reduce(pixels: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """``pixels`` (rows × columns × bands, alpha last when there are 2 or 4) reduced the plain way
    by ``factors`` (columns, rows)."""
    _, vertical = dense_weights(pixels.shape[0], factors[1], 10)
    _, horizontal = dense_weights(pixels.shape[1], factors[0], 0)
    bands = [pixels[:, :, band] for band in range(pixels.shape[2])]
    alpha = bands[-1] if len(bands) in (2, 4) else None
    if alpha is not None:
        premultiply = (np.arange(256) / 255.0).astype(np.float32)[alpha]
        bands = [np.floor(band.astype(np.float32) * premultiply) for band in bands[:-1]] + [alpha]
    reduced = [integer_pass(integer_pass(band, vertical).T, horizontal).T for band in bands]
    if alpha is not None:
        with np.errstate(divide="ignore"):
            unpremultiply = np.where(np.arange(256) == 0, 0.0, 255.0 / np.arange(256)).astype(np.float32)
        scale = unpremultiply[reduced[-1]]
        colour = [np.minimum(band.astype(np.float32) * scale, 255).astype(np.uint8) for band in reduced[:-1]]
        reduced = [*colour, reduced[-1]]
    return np.stack(reduced, axis=-1)


def noise(shape: tuple[int, int], bands: int) -> np.ndarray:
    """Noise over hard edges; with alpha, invisible and opaque regions and every value between."""
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    pixels = rng.integers(0, 256, size=(*shape, bands), dtype=np.uint8)
    pixels[: shape[0] // 3, : shape[1] // 4, :] = 255
    if bands in (2, 4):
        pixels[shape[0] // 2 :, : shape[1] // 3, -1] = 0
        pixels[: shape[0] // 4, shape[1] // 2 :, -1] = 255
    return pixels


@pytest.fixture(params=["one group", "many groups"])
def cast_groups(request: pytest.FixtureRequest) -> Iterator[None]:
    """As configured, and with source lines converted a few at a time (many groups a pass)."""
    before = vips_reduce._CAST_BYTES
    if request.param == "many groups":
        vips_reduce._CAST_BYTES = 16 * 1024
    yield
    vips_reduce._CAST_BYTES = before


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize(("shape", "factor"), SIZES_AND_FACTORS)
def test_the_blocked_passes_give_the_pixels_of_one_integer_product_per_pass(
    cast_groups: None, mode: str, shape: tuple[int, int], factor: float
) -> None:
    pixels = noise(shape, len(mode))
    image = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode)
    size = (vips_reduce.sharp_size(shape[1], factor), vips_reduce.sharp_size(shape[0], factor))
    reduced = vips_reduce.reduce(image, size, factor)
    assert reduced is not None
    assert reduced.size == size
    got = np.asarray(reduced).reshape(size[1], size[0], len(mode))
    assert np.array_equal(got, plain_reduce(pixels, (factor, factor)))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize(
    ("shape", "size"), [((450, 800), (267, 150)), ((1000, 1600), (800, 500)), ((301, 517), (200, 98))]
)
def test_a_resize_reduces_each_axis_by_its_own_factor_with_the_same_arithmetic(
    mode: str, shape: tuple[int, int], size: tuple[int, int]
) -> None:
    pixels = noise(shape, len(mode))
    image = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode)
    resized = vips_reduce.resize(image, size)
    assert resized is not None
    assert resized.size == size
    got = np.asarray(resized).reshape(size[1], size[0], len(mode))
    assert np.array_equal(got, plain_reduce(pixels, (shape[1] / size[0], shape[0] / size[1])))


@pytest.mark.parametrize("size", [(400, 150), (100, 75), (300, 400)])
def test_a_resize_that_does_not_reduce_an_axis_or_reduces_it_four_times_is_left_to_the_caller(
    size: tuple[int, int],
) -> None:
    image = Image.fromarray(noise((300, 400), 3), "RGB")
    assert vips_reduce.resize(image, size) is None


def test_float32_division_gives_libvips_premultiply_factor_for_every_alpha() -> None:
    alpha = np.arange(256)
    assert np.array_equal(alpha.astype(np.float32) / vips_reduce._ALPHA_MAX, (alpha / 255.0).astype(np.float32))


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
@pytest.mark.parametrize("opaque_rows", [300, 600])
def test_opaque_lines_give_the_pixels_of_premultiplying_them(cast_groups: None, mode: str, opaque_rows: int) -> None:
    # Lines with no pixel less than opaque are not premultiplied or unpremultiplied (times 1):
    # opaque at the top (whole groups of lines in both passes) or everywhere, noise elsewhere.
    pixels = noise((600, 900), len(mode))
    pixels[:opaque_rows, :, -1] = 255
    image = Image.fromarray(pixels, mode)
    factor = 1.9
    size = (vips_reduce.sharp_size(900, factor), vips_reduce.sharp_size(600, factor))
    reduced = vips_reduce.reduce(image, size, factor)
    assert reduced is not None
    got = np.asarray(reduced).reshape(size[1], size[0], len(mode))
    assert np.array_equal(got, plain_reduce(pixels, (factor, factor)))


@pytest.mark.parametrize("mode", ["LA", "RGB", "RGBA"])
def test_a_new_image_not_in_one_block_is_written_from_a_buffer_of_columns_with_the_same_pixels(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # The reduced image's memory is written in place where it is one block (always in the worker);
    # where it is not, the columns are reduced into a buffer and copied into it after.
    pixels = noise((600, 900), len(mode))
    image = Image.fromarray(pixels, mode)
    factor = 1.9
    size = (vips_reduce.sharp_size(900, factor), vips_reduce.sharp_size(600, factor))
    read_in_place = vips_reduce.shared_pixels
    views: list[bool] = []

    def source_only(of: Image.Image) -> np.ndarray | None:
        view = read_in_place(of) if of is image else None
        views.append(view is not None)
        return view

    monkeypatch.setattr(vips_reduce, "shared_pixels", source_only)
    reduced = vips_reduce.reduce(image, size, factor)
    assert views[0]  # the source was read in place: only the new image's memory was not one block
    assert reduced is not None
    got = np.asarray(reduced).reshape(size[1], size[0], len(mode))
    assert np.array_equal(got, plain_reduce(pixels, (factor, factor)))
