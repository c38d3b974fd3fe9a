"""Where a worker's image renders run: on threads, one per core at most, within a pixel budget.

The media-processing queue runs several jobs per worker process (5 by default) because most of
a job is waiting (the store, the database, events). The render itself (:func:`process_image`) is
CPU work that releases the GIL, so it runs in a thread; but five renders at once on two cores only
thrash each other's caches and hold five decoded images in memory. :class:`Renderer` starts a
render only when

- fewer than ``slots`` renders run (the cores this process may use), and
- the source pixels of the renders running, with this one, stay within ``pixel_budget``
  (a render over the budget on its own runs alone);

in the order the renders were asked for. The others wait in the event loop, holding no thread
and no pixels. With one slot per core, one image is decoded while the previous one's variants
are still being encoded on the other core: the overlap a single image cannot give (a WebP
encode runs on one thread). The budget keeps two big images from being decoded at once: a
render's peak memory grows with its source's pixels (measured on the shared test photos: about
40 MB, plus 5-11 bytes per source pixel, progressive JPEGs the most).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from runtime.errors import UnsupportedMediaType
from services.media.domain.pipeline import ProcessedImage, process_image
from services.media.domain.sniff import sniff
from services.media.domain.variants import VariantSpec
from services.media.memory import release_free_memory
from services.media.settings import DEFAULT_PIXEL_BUDGET

__all__ = ["DEFAULT_PIXEL_BUDGET", "Renderer", "usable_cores"]


_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
TRIM_ABOVE_MB = 120.0
"""After a render, malloc's free pages are given back when the process holds more than this
(:func:`~services.media.memory.release_free_memory`). With two renders at once the shared test
photos peaked at 313 MB without trimming; trimming above 200 MB still let a pair reach 308 (over
the 300 MB target); above 120 MB with a 12-megapixel budget, 278 MB for about 3 % more CPU."""


def usable_cores(cpu_max: Path = _CPU_MAX) -> int:
    """The cores this process may use: its CPU affinity, lowered by a cgroup v2 CPU quota
    (a container limited to 1.5 CPUs on a 16-core node gets 2). At least 1."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota readable: the affinity stands
    return max(1, cores)


class Renderer:
    """Runs :func:`process_image` on threads: at most ``slots`` at once (default: one per usable
    core), their sources' pixels within ``pixel_budget``, first asked first started."""

    def __init__(
        self, slots: int | None = None, pixel_budget: int = DEFAULT_PIXEL_BUDGET, trim_above_mb: float = TRIM_ABOVE_MB
    ) -> None:
        if slots is not None and slots < 1:
            raise ValueError(f"render slots must be at least 1, not {slots}")
        if pixel_budget < 1:
            raise ValueError(f"the render pixel budget must be at least 1, not {pixel_budget}")
        self.slots = slots or usable_cores()
        self.pixel_budget = pixel_budget
        self.trim_above_mb = trim_above_mb
        self.running = 0
        self.pixels_running = 0
        self._turns: asyncio.Condition | None = None
        self._queue: list[object] = []  # tickets of the renders waiting, first asked first

    def _fits(self, pixels: int) -> bool:
        if self.running == 0:
            return True
        return self.running < self.slots and self.pixels_running + pixels <= self.pixel_budget

    async def render(
        self, data: bytes, specs: Sequence[VariantSpec], *, max_pixels: int, keep_metadata: bool = False
    ) -> ProcessedImage:
        async with self.turn(_source_pixels(data, self.pixel_budget)):
            return await asyncio.to_thread(_render, data, specs, max_pixels, keep_metadata, self.trim_above_mb)

    @contextlib.asynccontextmanager
    async def turn(self, pixels: int) -> AsyncIterator[None]:
        """Wait until a render of ``pixels`` source pixels may start (see the class), hold its
        place while the block runs."""
        turns = self._turns = self._turns or asyncio.Condition()
        ticket = object()
        self._queue.append(ticket)
        try:
            async with turns:
                await turns.wait_for(lambda: self._queue[0] is ticket and self._fits(pixels))
                self._queue.pop(0)
                self.running += 1
                self.pixels_running += pixels
                turns.notify_all()  # the next in line may fit beside this one
        except BaseException:  # cancelled while waiting: out of the line, and the next may go
            if ticket in self._queue:
                self._queue.remove(ticket)
                async with turns:
                    turns.notify_all()
            raise
        try:
            yield
        finally:
            async with turns:
                self.running -= 1
                self.pixels_running -= pixels
                turns.notify_all()


def _render(
    data: bytes, specs: Sequence[VariantSpec], max_pixels: int, keep_metadata: bool, trim_above_mb: float
) -> ProcessedImage:
    try:
        return process_image(data, specs, max_pixels=max_pixels, keep_metadata=keep_metadata)
    finally:
        release_free_memory(above_mb=trim_above_mb)


def _source_pixels(data: bytes, unknown: int) -> int:
    """The pixels the header declares; ``unknown`` (a render that runs alone) when it does not
    say, or the bytes are no image (the render then fails at once, as it would anyway)."""
    try:
        declared = sniff(data).pixels
    except UnsupportedMediaType:
        return unknown
    return unknown if declared is None else declared
