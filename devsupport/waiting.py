"""Waiting for something to become true, bounded, saying what was awaited when it never does.

One helper in two forms: :func:`wait_until` for asyncio code (the loop keeps running while it
polls; the check may be a plain function or a coroutine function) and :func:`wait_until_blocking`
for threads and plain scripts. Both return the check's first truthy value, so a probe can hand
back what it found, and both raise :class:`TimeoutError` naming ``what`` when time runs out.

Bounds are generous on purpose: on a loaded 2-core machine a wait that "usually takes 50 ms"
may take seconds, and a wait only costs its full bound when the awaited thing never happens.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


def _timed_out(within: float, what: str, last: object, detail: Callable[[], str] | None) -> TimeoutError:
    message = f"not within {within:g} s: {what} (last check gave {last!r})"
    return TimeoutError(f"{message}\n{detail()}" if detail is not None else message)


@overload
async def wait_until(
    check: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    what: str,
    interval: float = ...,
    detail: Callable[[], str] | None = ...,
) -> T: ...


@overload
async def wait_until(
    check: Callable[[], T | None],
    *,
    within: float,
    what: str,
    interval: float = ...,
    detail: Callable[[], str] | None = ...,
) -> T: ...


async def wait_until(
    check: Callable[[], object],
    *,
    within: float,
    what: str,
    interval: float = 0.02,
    detail: Callable[[], str] | None = None,
) -> Any:
    """Call ``check()`` (awaiting it when it returns an awaitable) every ``interval`` seconds
    until it gives something truthy; return that.

    ``detail`` is called only on timeout and its text appended to the error (a process's
    output, say, which says more than the check's last answer).
    """
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(within, what, value, detail)
        await asyncio.sleep(interval)


def wait_until_blocking(
    check: Callable[[], T | None],
    *,
    within: float,
    what: str,
    interval: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> T:
    """:func:`wait_until` for code without an event loop: sleeps between checks."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(within, what, value, detail)
        time.sleep(interval)
