"""Coalescer: the lookups of one loop turn are one batch call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from services.notify.coalesce import Coalescer


class Loader:
    def __init__(self, values: Mapping[str, int], *, fail: bool = False) -> None:
        self.values, self.fail = values, fail
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, keys: Sequence[str]) -> Mapping[str, int]:
        self.calls.append(sorted(keys))
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("database gone")
        return {k: self.values[k] for k in keys if k in self.values}


async def test_lookups_of_one_loop_turn_are_one_call_and_a_missing_key_gets_its_own_answer() -> None:
    load = Loader({"a": 1, "b": 2})
    coalescer: Coalescer[str, int] = Coalescer(load, lambda key: KeyError(key))
    results = await asyncio.gather(*(coalescer.get(k) for k in "abac"), return_exceptions=True)
    assert results[:3] == [1, 2, 1]
    assert isinstance(results[3], KeyError)
    assert load.calls == [["a", "b", "c"]]


async def test_a_missing_key_may_answer_a_default_value() -> None:
    coalescer: Coalescer[str, int] = Coalescer(Loader({}), lambda key: 0)
    assert await coalescer.get("nobody") == 0


async def test_lookups_asked_while_a_call_is_under_way_go_to_the_next_call() -> None:
    load = Loader({"a": 1, "b": 2})
    load.gate.clear()
    coalescer: Coalescer[str, int] = Coalescer(load, lambda key: KeyError(key))
    first = asyncio.create_task(coalescer.get("a"))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(coalescer.get("b"))
    await asyncio.sleep(0.01)
    load.gate.set()
    assert (await first, await second) == (1, 2)
    assert load.calls == [["a"], ["b"]]


async def test_a_failed_call_fails_every_caller_in_it() -> None:
    coalescer: Coalescer[str, int] = Coalescer(Loader({"a": 1}, fail=True), lambda key: KeyError(key))
    for outcome in await asyncio.gather(coalescer.get("a"), coalescer.get("b"), return_exceptions=True):
        assert isinstance(outcome, ConnectionError)
    with pytest.raises(ConnectionError):
        await coalescer.get("a")
