"""The media worker's process tuning (services/media/memory.py), as the worker and its bench apply it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from services.media.domain import pixel_memory
from services.media.domain.budget import SOURCE_BUDGET
from services.media.memory import return_free_heap, tune_media_process


@pytest.fixture
def tuned() -> Iterator[None]:
    """A process tuned as the worker is, put back as it was afterwards (the settings are process-wide)."""
    allocator, hook = Image.core.get_use_block_allocator(), SOURCE_BUDGET.before_large
    tune_media_process()
    yield
    Image.core.set_use_block_allocator(allocator)
    SOURCE_BUDGET.before_large = hook


def test_a_tuned_process_reads_a_source_over_16_mb_in_place(tuned: None) -> None:
    image = Image.new("RGB", (2400, 1800), (10, 20, 30))  # 17 MB: several blocks untuned
    first, again = pixel_memory.image_planes(image)[0], pixel_memory.image_planes(image)[0]
    assert np.shares_memory(first, again)
    assert (first == 10).all()


def test_a_tuned_process_returns_the_free_heap_before_a_large_source(tuned: None) -> None:
    assert SOURCE_BUDGET.before_large is return_free_heap
    assert return_free_heap()  # glibc, as in the image the worker runs on
