"""Process-wide memory tuning for the media worker: glibc's malloc arenas.

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
import functools
import os
from pathlib import Path

__all__ = ["release_free_memory", "resident_mb", "share_one_malloc_arena"]

_M_ARENA_MAX = -8  # glibc's <malloc.h>


def share_one_malloc_arena() -> bool:
    """Make every thread allocate from one arena; ``False`` where malloc is not glibc's (nothing changed)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, 1))


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def resident_mb() -> float:
    """This process's resident memory now (``/proc/self/statm``; 0 where there is none)."""
    try:
        resident_pages = int(_STATM.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return resident_pages * _PAGE_BYTES / 2**20


_STATM = Path("/proc/self/statm")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def release_free_memory(above_mb: float = 0.0) -> bool:
    """Give the pages malloc holds free back to the system (glibc's ``malloc_trim``) when the
    resident memory is over ``above_mb``; ``True`` if it trimmed. A render frees a hundred
    megabytes or more in pieces that glibc keeps for reuse, scattered through its heap; with two
    renders interleaving, those kept pieces add up to a peak no single render reaches. Trimming
    costs CPU (about a tenth of a render's, the pages given back are faulted in again by the next
    render), so it is done only when the kept memory has grown past ``above_mb``."""
    if above_mb and resident_mb() <= above_mb:
        return False
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
