"""Pillow's Lanczos resampling as the pipeline uses it: in bands on several threads it gives one call's pixels
(a rare one off by 1); the vertical pass runs first, and one shrink factor for both axes samples
a grid centred on the image, its edges extended where the grid reaches outside (as libvips does)."""

from __future__ import annotations

import functools
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from services.media.domain import pillow_resample
from services.media.domain.pillow_resample import _extend_edges, resize
from tests.media.images import shared


@functools.cache
def photo(name: str, mode: str) -> Image.Image:
    with Image.open(io.BytesIO(shared(name))) as image:
        return image.convert(mode)


@pytest.mark.parametrize(("name", "mode"), [("kleiber.jpg", "RGB"), ("calla_rgba.png", "RGBA")])
@pytest.mark.parametrize("size", [(1600, 900), (800, 451), (777, 333)])
@pytest.mark.parametrize("stripes", [2, 3])
def test_bands_resampled_apart_join_into_one_calls_pixels(
    name: str, mode: str, size: tuple[int, int], stripes: int
) -> None:
    source = photo(name, mode)
    whole = np.asarray(resize(source, size), dtype=np.int16)
    with ThreadPoolExecutor(max_workers=stripes - 1) as pool:
        banded = np.asarray(resize(source, size, stripes=stripes, run=pool.submit), dtype=np.int16)
    assert banded.shape == whole.shape
    assert int(np.abs(banded - whole).max()) <= 1
    assert float((banded != whole).mean()) < 0.001


def test_the_vertical_pass_runs_first() -> None:
    source = photo("picture_0b.jpg", "RGB")
    size = (800, 541)
    tall = source.resize((source.width, size[1]), Image.Resampling.LANCZOS)
    expected = np.asarray(tall.resize(size, Image.Resampling.LANCZOS))
    assert (np.asarray(resize(source, size)) == expected).all()
    assert not (np.asarray(source.resize(size, Image.Resampling.LANCZOS)) == expected).all()


def mirrored_rows(width: int, height: int) -> Image.Image:
    """An image whose bottom half is its top half upside down (so is any centred resample of it)."""
    rng = np.random.default_rng(7)
    top = rng.integers(0, 256, size=((height + 1) // 2, width, 3), dtype=np.uint8)
    return Image.fromarray(np.concatenate([top, top[: height // 2][::-1]]), "RGB")


@pytest.mark.parametrize("source_height", [1740, 1741])  # the grid left over inside / reaching outside
def test_one_shrink_factor_samples_a_grid_centred_on_the_image(source_height: int) -> None:
    source = mirrored_rows(2572, source_height)
    shrink = 2572 / 1600
    size = (1600, round(source_height / shrink))
    out = np.asarray(resize(source, size, shrink=shrink), dtype=np.int16)
    assert out.shape == (size[1], 1600, 3)
    assert int(np.abs(out - out[::-1]).max()) <= 1  # symmetric: the grid is centred


def test_edges_are_extended_with_copies_of_the_edge_pixels() -> None:
    source = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20, "L")
    extended = np.asarray(_extend_edges(source, 2, 1))
    assert extended.shape == (5, 8)
    assert (extended[1:4, 2:6] == np.asarray(source)).all()
    assert (extended[0, 2:6] == np.asarray(source)[0]).all()
    assert (extended[4, 2:6] == np.asarray(source)[2]).all()
    assert (extended[:, 0] == extended[:, 2]).all()
    assert (extended[:, 7] == extended[:, 5]).all()


def test_a_huge_source_is_not_copied_to_extend_its_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pillow_resample, "_EXTEND_MAX_PIXELS", 1000)
    copies: list[tuple[int, int]] = []

    def extend(image: Image.Image, px: int, py: int) -> Image.Image:
        copies.append((px, py))
        return image

    monkeypatch.setattr(pillow_resample, "_extend_edges", extend)
    source = mirrored_rows(2572, 1741)  # the grid reaches outside: it would be extended
    out = resize(source, (1600, round(1741 / (2572 / 1600))), shrink=2572 / 1600)
    assert out.size == (1600, 1083)
    assert copies == []
