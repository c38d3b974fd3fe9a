"""How many bytes of decoded sources a process's jobs hold at once.

A worker runs several jobs at a time (the queue's concurrency), each on its own thread, so that
one image's encodes overlap the next one's decode. What they must not do is decode two big
originals at once: a decoded source is the largest buffer of a job by far (a 16-megapixel photo is
64 MB in Pillow; a progressive JPEG's decoder keeps every DCT coefficient besides, 100 MB more),
while everything after the first resize is small. So each job takes its source's estimated bytes
(:func:`decode_bytes`, known from the header before any pixel is decoded) from one
:class:`MemoryBudget` before it decodes, and gives them back as soon as the source is reduced to
its largest variant and freed. Small images decode side by side; two big ones take turns; one
bigger than the whole budget decodes alone. Jobs are let in in the order they asked, but for a few
later ones that fit going ahead of one that must wait for bytes to be given back (the worker's
budget: 4 each): while a big source waits for the budget to empty, small jobs keep the cores busy,
and it is still not overtaken forever by a stream of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image

__all__ = ["SOURCE_BUDGET", "Holding", "MemoryBudget", "decode_bytes", "render_bytes"]


class MemoryBudget:
    """A number of bytes that holders take and give back, first come first served."""

    def __init__(
        self,
        limit: int,
        *,
        large: int | None = None,
        before_large: Callable[[], object] | None = None,
        overtakes: int = 0,
    ) -> None:
        if limit <= 0:
            raise ValueError("a memory budget needs a positive limit")
        self.limit = limit
        self.overtakes = overtakes
        """How many later callers that fit may go in ahead of a caller that does not (each of them
        after every caller ahead of it that fits): a big source then waits for a few small jobs
        more, but the cores are not left idle while it waits for everything to be given back."""
        self.large = limit // 2 if large is None else large
        self.before_large = before_large
        """Called (on the holder's thread) once a holding of ``large`` bytes or more is let in, before
        the holder allocates them: the worker returns the heap's free memory to the system there
        (:func:`services.media.memory.return_free_heap`), so a big source is not allocated on top of
        what earlier jobs freed but the allocator kept."""
        self._used = 0
        self._queue: list[_Turn] = []
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
        earlier caller is in (or, up to :attr:`overtakes` times each, waits for bytes that do not fit
        yet), hold them for the block (part may be given back early through the
        :class:`Holding`), then give back the rest."""
        amount = max(0, min(amount, self.limit))
        turn = _Turn(amount)
        with self._changed:
            self._queue.append(turn)
            self._changed.wait_for(lambda: self._may_enter(turn))
            position = self._queue.index(turn)
            for ahead in self._queue[:position]:
                ahead.overtaken += 1
            del self._queue[position]
            self._used += amount
            self._changed.notify_all()  # the next in line may fit beside this one
        holding = Holding(self, amount)
        if amount >= self.large and self.before_large is not None:
            self.before_large()
        try:
            yield holding
        finally:
            holding.give_back(holding.amount)

    def _may_enter(self, turn: _Turn) -> bool:
        if self._used + turn.amount > self.limit:
            return False
        for ahead in self._queue:
            if ahead is turn:
                return True
            if ahead.overtaken >= self.overtakes or self._used + ahead.amount <= self.limit:
                return False  # it may not be overtaken again, or it fits now: its turn first
        return False

    def _give_back(self, amount: int) -> None:
        with self._changed:
            self._used -= amount
            self._changed.notify_all()


@dataclass(slots=True)
class _Turn:
    """A caller waiting in line: what it asked for, and how many later callers went in ahead of it."""

    amount: int
    overtaken: int = 0


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


SOURCE_BUDGET = MemoryBudget(128 * 1024 * 1024, large=112 * 1024 * 1024, overtakes=4)
"""The process's budget for decoded sources and renders (4 overtakes: as many as the other jobs of
a worker running 5 at once), shared by every
:func:`~.pipeline.process_image` call that is not given its own: at 128 MB, three 4-megapixel photos
or one 16-megapixel one decode at a time; past the decode a job holds its render's share
(:func:`render_bytes`) to its end, so at most two 1600-pixel images with alpha encode at once.

``large`` (where the worker returns the heap's free memory first) is 112 MB, the biggest sources
only: at 64 MB the heap was trimmed before 10 of the 26 shared test photos, and the jobs after
each trim faulted much of what it gave back in again (bench._media_worker: 9,800 page faults and
27 ms of system time an image at 64 MB, 7,900 and 22 ms at 112 MB; peak RSS 252-263 MB at 64 MB, 253-273 MB at 112)."""
