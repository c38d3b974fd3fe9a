"""Lookups asked for in the same turn of the event loop, answered by one batch query.

A worker runs many jobs at once; each asks for its own row (its notification, its user's push
subscriptions). :class:`Coalescer` collects the keys asked for while a turn of the loop runs and
loads them with one call of ``load`` (``SELECT … WHERE key IN (…)``); while that call is under way,
new keys wait for the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """``await get(key)``: the value ``load`` found for ``key``, else ``missing(key)`` (a value to
    answer, or an exception to raise). A failed load fails every caller in its batch."""

    def __init__(
        self,
        load: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        missing: Callable[[K], V | Exception],
    ) -> None:
        self._load = load
        self._missing = missing
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._loader: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._loader is None or self._loader.done():
            self._loader = asyncio.create_task(self._load_batches())
        return await future

    async def _load_batches(self) -> None:
        while self._waiting:
            await asyncio.sleep(0)  # the other jobs started in this turn of the loop join the batch
            batch, self._waiting = self._waiting, {}
            try:
                found = await self._load(list(batch))
            except Exception as exc:
                for futures in batch.values():
                    settle(futures, exception=exc)
                continue
            for key, futures in batch.items():
                answer = found[key] if key in found else self._missing(key)
                if isinstance(answer, Exception):
                    settle(futures, exception=answer)
                else:
                    settle(futures, result=answer)


def settle(
    futures: Sequence[asyncio.Future[V]], *, result: V | None = None, exception: BaseException | None = None
) -> None:
    """Answer every future whose caller still waits (a cancelled caller's future is done)."""
    for future in futures:
        if future.done():
            continue
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)  # type: ignore[arg-type]
