"""The JPEG DCT scale a decode uses: reduced, but leaving the Lanczos step a real reduction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.media.domain.pipeline import dct_scale


@pytest.mark.parametrize(
    ("shrink", "scale"),
    [
        (1.0, 1),
        (1.9, 1),
        (2.04, 1),  # 1/2 would leave a Lanczos step of 1.02: decoded in full
        (2.56, 1),
        (3.0, 2),
        (3.77, 2),
        (4.5, 2),
        (5.0, 4),
        (8.9, 4),
        (9.0, 8),
        (40.0, 8),
    ],
)
def test_the_scale_for_a_shrink(shrink: float, scale: int) -> None:
    assert dct_scale(shrink) == scale


@given(st.floats(min_value=1.0, max_value=1000.0))
def test_the_scale_never_exceeds_the_shrink_and_leaves_a_real_reduction(shrink: float) -> None:
    scale = dct_scale(shrink)
    assert scale in (1, 2, 4, 8)
    assert scale <= shrink
    assert scale == 1 or shrink >= scale + 1
