"""How many bytes of decoded sources a process's jobs hold at once.

A worker runs several jobs at a time (the queue's concurrency), each on its own thread, so that
one image's encodes overlap the next one's decode. What they must not do is decode two big
originals at once: a decoded source is the largest buffer of a job by far (a 16-megapixel photo is
64 MB in Pillow; a progressive JPEG's decoder keeps every DCT coefficient besides, 100 MB more),
while everything after the first resize is small. So each job takes its source's estimated bytes
(:func:`decode_bytes`, known from the header before any pixel is decoded) from one
:class:`MemoryBudget` before it decodes, and gives them back as soon as the source is reduced to
its largest variant and freed. Small images decode side by side; two big ones take turns; one
bigger than the whole budget decodes alone. Jobs are let in in the order they asked, so a big one
is not overtaken forever by a stream of small ones.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PIL import Image

__all__ = ["SOURCE_BUDGET", "Holding", "MemoryBudget", "decode_bytes", "render_bytes"]


class MemoryBudget:
    """A number of bytes that holders take and give back, first come first served."""

    def __init__(
        self, limit: int, *, large: int | None = None, before_large: Callable[[], object] | None = None
    ) -> None:
        if limit <= 0:
            raise ValueError("a memory budget needs a positive limit")
        self.limit = limit
        self.large = limit // 2 if large is None else large
        self.before_large = before_large
        """Called (on the holder's thread) once a holding of ``large`` bytes or more is let in, before
        the holder allocates them: the worker returns the heap's free memory to the system there
        (:func:`services.media.memory.return_free_heap`), so a big source is not allocated on top of
        what earlier jobs freed but the allocator kept."""
        self._used = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @property
    def used(self) -> int:
        return self._used

    @property
    def waiting(self) -> int:
        """How many callers are waiting for their turn."""
        return len(self._queue)

    @contextmanager
    def held(self, amount: int) -> Iterator[Holding]:
        """Wait until ``amount`` bytes fit (everything, if ``amount`` is over the limit) and every
        earlier caller is in, hold them for the block (part may be given back early through the
        :class:`Holding`), then give back the rest."""
        amount = max(0, min(amount, self.limit))
        turn = object()
        with self._changed:
            self._queue.append(turn)
            self._changed.wait_for(lambda: self._queue[0] is turn and self._used + amount <= self.limit)
            self._queue.popleft()
            self._used += amount
            self._changed.notify_all()  # the next in line may fit beside this one
        holding = Holding(self, amount)
        if amount >= self.large and self.before_large is not None:
            self.before_large()
        try:
            yield holding
        finally:
            holding.give_back(holding.amount)

    def _give_back(self, amount: int) -> None:
        with self._changed:
            self._used -= amount
            self._changed.notify_all()


class Holding:
    """Bytes taken from a :class:`MemoryBudget`, some of which can be given back before the end."""

    def __init__(self, budget: MemoryBudget, amount: int) -> None:
        self._budget = budget
        self.amount = amount

    def give_back(self, amount: int) -> None:
        """Return ``amount`` of what is held (at most all of it) to the budget now."""
        amount = max(0, min(amount, self.amount))
        self.amount -= amount
        if amount:
            self._budget._give_back(amount)


def decode_bytes(image: Image.Image, full: tuple[int, int]) -> int:
    """What decoding ``image`` (opened, not loaded; its size the one it will decode at, after any
    JPEG draft) up to its first resize costs, about: the pixels at four bytes each (how Pillow
    stores every mode of more than one band, and room for one converted copy of a single-band
    one), plus, for a progressive JPEG, libjpeg's coefficient buffer: two bytes a component for
    every pixel of the ``full`` size, whatever the DCT scale."""
    cost = image.width * image.height * 4
    if image.format == "JPEG" and image.info.get("progressive"):
        cost += full[0] * full[1] * len(image.getbands()) * 2
    return cost


def render_bytes(width: int, height: int, alpha: bool) -> int:
    """What rendering a job's variants from a largest one of ``width``×``height`` holds, about:
    the variants themselves and their resampling copies, and the WebP encoder's working memory,
    which for an image with alpha is several times its pixels (the alpha plane is compressed
    losslessly: measured 45 MB beyond the pixels for a 1600×1000 RGBA photo, 11 MB without alpha)."""
    return width * height * (40 if alpha else 16)


SOURCE_BUDGET = MemoryBudget(128 * 1024 * 1024, large=64 * 1024 * 1024)
"""The process's budget for decoded sources and renders, shared by every
:func:`~.pipeline.process_image` call that is not given its own: at 128 MB, three 4-megapixel photos
or one 16-megapixel one decode at a time; past the decode a job holds its render's share
(:func:`render_bytes`) to its end, so at most two 1600-pixel images with alpha encode at once."""
