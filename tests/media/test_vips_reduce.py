"""The exact libvips reduction: sharp's own pixels, and where it steps aside.

The golden files are sharp 0.34.5 (libvips 8.17.3) output, made with
``sharp(png).resize({width: 250, height: 250, fit: "inside"}).png()`` from :func:`source` (and
1600×1600 from the noise column below): lossless, so they hold libvips' resized pixels as they
were before any encoder."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.media.domain import pixel_memory, vips_reduce
from services.media.domain.pipeline import process_image
from services.media.domain.variants import DEFAULT_PRESET, DEFAULT_PRESETS
from tests.media.images import shared

GOLDEN = Path(__file__).parent / "golden"
SHRINK = 641 / 250


def source(mode: str) -> Image.Image:
    """641×427: gradients, noise and hard edges (every kind of pixel a mask can meet); with alpha,
    a ramp from invisible to opaque and a fully transparent block whose colour must not leak."""
    rng = np.random.default_rng(9)
    y, x = np.mgrid[0:427, 0:641]
    rgb = np.stack([x * 255 // 640, y * 255 // 426, (x ^ y) & 255], axis=-1).astype(np.int16)
    rgb += rng.integers(-40, 41, size=rgb.shape, dtype=np.int16)
    rgb[100:200, 300:400] = (255, 0, 0)
    pixels = np.clip(rgb, 0, 255).astype(np.uint8)
    if mode == "RGB":
        return Image.fromarray(pixels, "RGB")
    alpha = (x * 255 // 640).astype(np.uint8)
    alpha[250:350, 50:150] = 0
    return Image.fromarray(np.dstack([pixels, alpha]), "RGBA")


def golden(mode: str) -> np.ndarray:
    with Image.open(GOLDEN / f"vips_reduce_{mode.lower()}.png") as image:
        return np.asarray(image.convert(mode))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_reduction_has_sharps_pixels_exactly(mode: str) -> None:
    size = (vips_reduce.sharp_size(641, SHRINK), vips_reduce.sharp_size(427, SHRINK))
    assert size == (250, 167)
    reduced = vips_reduce.reduce(source(mode), size, SHRINK)
    assert reduced is not None
    assert reduced.mode == mode
    assert (np.asarray(reduced) == golden(mode)).all()


def test_row_positions_restart_every_ten_rows_as_behind_libvips_line_cache() -> None:
    """Accumulated over the whole height instead, 0.4 % of these rows would pick another mask."""
    noise = np.random.default_rng(11).integers(0, 256, size=(3837, 3, 3), dtype=np.uint8)
    reduced = vips_reduce.reduce(Image.fromarray(noise, "RGB"), (1, 1600), 3837 / 1600)
    assert reduced is not None
    with Image.open(GOLDEN / "vips_reduce_tall.png") as image:  # sharp: resize 1600×1600 inside
        assert (np.asarray(reduced) == np.asarray(image.convert("RGB"))).all()


def test_bands_reduced_on_threads_are_the_same_pixels() -> None:
    with ThreadPoolExecutor(2) as pool:
        reduced = vips_reduce.reduce(source("RGBA"), (250, 167), SHRINK, run=pool.submit)
    assert reduced is not None
    assert (np.asarray(reduced) == golden("RGBA")).all()


def test_greyscale_is_reduced_as_one_band_of_the_same_arithmetic() -> None:
    grey = source("RGB").getchannel(1)
    reduced = vips_reduce.reduce(grey, (250, 167), SHRINK)
    assert reduced is not None
    assert reduced.mode == "L"
    assert (np.asarray(reduced) == golden("RGB")[:, :, 1]).all()


@pytest.mark.parametrize(
    ("size", "shrink", "mode"),
    [
        ((160, 107), 641 / 160, "RGB"),  # 4×: libvips box-shrinks first
        ((251, 167), SHRINK, "RGB"),  # not the size libvips would give
        ((250, 167), SHRINK, "CMYK"),
        ((641, 427), 1.0, "RGB"),  # nothing to reduce
    ],
)
def test_what_it_does_not_reproduce_is_left_to_the_caller(size: tuple[int, int], shrink: float, mode: str) -> None:
    assert vips_reduce.reduce(source("RGB").convert(mode), size, shrink) is None


def upright_variants(data: bytes) -> dict[str, Image.Image]:
    result = process_image(data, DEFAULT_PRESETS[DEFAULT_PRESET], max_pixels=60_000_000)
    out = {}
    for v in result.variants:
        with Image.open(io.BytesIO(v.data)) as image:
            out[v.name] = image.convert("RGB")
            assert out[v.name].size == (v.width, v.height)
    return out


def rotated_jpeg(orientation: int) -> bytes:
    """kleiber.jpg (6028×3391, decoded at 1/2 for a 1600 variant) stored with its sides swapped
    by ``orientation`` and tagged to be turned back."""
    turn = {6: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180}[orientation]
    with Image.open(io.BytesIO(shared("kleiber.jpg"))) as photo:
        stored = photo.transpose(turn)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", [6, 3])
def test_a_jpeg_decoded_at_half_scale_comes_out_upright_with_its_colours_and_exact_sizes(orientation: int) -> None:
    variants = upright_variants(rotated_jpeg(orientation))
    assert {name: image.size for name, image in variants.items()} == {
        "large": (1600, 900),
        "medium": (800, 450),
        "thumb": (150, 150),
    }
    with Image.open(io.BytesIO(shared("kleiber.jpg"))) as photo:
        expected = photo.convert("RGB").resize((1600, 900), Image.Resampling.LANCZOS)
    difference = np.abs(np.asarray(variants["large"], np.int16) - np.asarray(expected, np.int16))
    assert float(difference.mean()) < 4  # upright: turned the wrong way it would be ~40
    assert np.abs(difference.reshape(-1, 3).mean(axis=0)).max() < 4  # no channel shifted


@pytest.fixture
def one_block_images() -> Iterator[None]:
    """Pillow allocating each image in one block (as the worker process sets it), then as before."""
    before = Image.core.get_use_block_allocator()
    Image.core.set_use_block_allocator(1)
    yield
    Image.core.set_use_block_allocator(before)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_the_planes_of_a_one_block_image_are_its_bands_read_in_place(one_block_images: None, mode: str) -> None:
    image = source("RGBA").convert(mode)
    planes = pixel_memory.image_planes(image)
    pixels = np.asarray(image)
    expected = [pixels] if pixels.ndim == 2 else [pixels[:, :, band] for band in range(pixels.shape[2])]
    assert len(planes) == len(expected)
    assert all((plane == band).all() for plane, band in zip(planes, expected, strict=True))
    assert np.shares_memory(planes[0], pixel_memory.image_planes(image)[0])  # both read the image itself


@pytest.fixture
def images_in_small_blocks() -> Iterator[None]:
    """Pillow's default allocator (a chain of blocks) with 64 KB blocks, so a small image spans several."""
    before = Image.core.get_use_block_allocator(), Image.core.get_block_size()
    Image.core.set_use_block_allocator(0)
    Image.core.set_block_size(64 * 1024)
    yield
    Image.core.set_use_block_allocator(before[0])
    Image.core.set_block_size(before[1])


def test_the_planes_of_an_image_in_several_blocks_are_copies_of_its_bands(images_in_small_blocks: None) -> None:
    image = source("RGB")
    planes = pixel_memory.image_planes(image)
    assert all((plane == np.asarray(image)[:, :, band]).all() for band, plane in enumerate(planes))
    assert not np.shares_memory(planes[0], pixel_memory.image_planes(image)[0])


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_one_block_image_is_reduced_to_sharps_pixels_too(one_block_images: None, mode: str) -> None:
    reduced = vips_reduce.reduce(source(mode), (250, 167), SHRINK)
    assert reduced is not None
    assert (np.asarray(reduced) == golden(mode)).all()


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_an_image_in_several_blocks_is_reduced_band_by_band_to_sharps_pixels_too(
    images_in_small_blocks: None, mode: str
) -> None:
    reduced = vips_reduce.reduce(source(mode), (250, 167), SHRINK)
    assert reduced is not None
    assert (np.asarray(reduced) == golden(mode)).all()
