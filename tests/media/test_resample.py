"""The pipeline's Lanczos resampling: in bands on several threads it gives one call's pixels
(a rare one off by 1), and it runs the vertical pass first, as libvips does."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from PIL import Image

from services.media.domain.pipeline import _resize
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
    whole = np.asarray(_resize(source, size), dtype=np.int16)
    banded = np.asarray(_resize(source, size, stripes=stripes), dtype=np.int16)
    assert banded.shape == whole.shape
    assert int(np.abs(banded - whole).max()) <= 1
    assert float((banded != whole).mean()) < 0.001


def test_the_vertical_pass_runs_first() -> None:
    source = photo("picture_0b.jpg", "RGB")
    size = (800, 541)
    tall = source.resize((source.width, size[1]), Image.Resampling.LANCZOS)
    expected = np.asarray(tall.resize(size, Image.Resampling.LANCZOS))
    assert (np.asarray(_resize(source, size)) == expected).all()
    assert not (np.asarray(source.resize(size, Image.Resampling.LANCZOS)) == expected).all()
