"""Process-wide memory tuning for the media worker: glibc's malloc arenas, Pillow's image blocks.

Images are big buffers allocated and freed by several threads (the decoder's, the encoder pool's
in :mod:`services.media.domain.pipeline`, ``asyncio.to_thread``'s). glibc gives threads arenas of
their own, and each arena keeps the buffers freed into it for its next allocations: with one
arena per encoder thread the bench worker's peak RSS over the shared test photos was 318 MB, with
one arena for every thread 224 MB (the encoders allocate little besides their output, so sharing
costs no measurable contention). The same effect as ``MALLOC_ARENA_MAX=1``, but set by the process
itself, so no deployment can forget it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

from PIL import Image

from runtime.process import mallopt
from services.media.domain.budget import SOURCE_BUDGET

__all__ = ["allocate_images_in_one_block", "return_free_heap", "share_one_malloc_arena", "tune_media_process"]

_M_ARENA_MAX = -8  # glibc's <malloc.h>


def share_one_malloc_arena() -> bool:
    """Make every thread allocate from one arena; ``False`` where malloc is not glibc's (nothing changed)."""
    return mallopt(_M_ARENA_MAX, 1)


def _libc_function(name: str) -> Any:
    """The C library's function ``name``, or ``None`` where there is no such library or function."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        return getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None


def allocate_images_in_one_block() -> bool:
    """Make Pillow allocate each new image as one block of memory rather than a chain of 16 MB
    blocks, so that :func:`services.media.domain.pixel_memory.image_planes` can read a decoded
    source in place (Pillow's Arrow export needs one block) instead of copying it out. ``False``
    where this Pillow has no such switch (the copy stays)."""
    switch = getattr(Image.core, "set_use_block_allocator", None)
    if switch is None:
        return False
    switch(1)
    return True


def return_free_heap() -> bool:
    """Give the pages of the heap's free chunks back to the system (glibc's ``malloc_trim``).
    glibc keeps what a job freed (tens of MB after big images) for later allocations, but a big
    source allocated next would be placed beside it, not in it: RSS would be both. ``False``
    where malloc is not glibc's."""
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True


def tune_media_process() -> None:
    """Everything above, for a process that renders images (the processing worker, its bench):
    one malloc arena, images in one block, the heap's free memory returned before a big source is
    decoded (the budget's ``before_large``)."""
    share_one_malloc_arena()
    allocate_images_in_one_block()
    SOURCE_BUDGET.before_large = return_free_heap
