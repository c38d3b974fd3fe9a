"""Background tasks that must run as long as the process does; one that ends by itself is a death.

A service's long-lived loops (an ingest loop, a publisher, a leader election, a stream follower)
run as asyncio tasks. When one raises or returns while it should still be running, nothing else
notices: the process stays up, answers its probes and may hold a lease with a dead loop.

A :class:`TaskSupervisor` watches such tasks (:meth:`~TaskSupervisor.spawn`,
:meth:`~TaskSupervisor.watch`, or ``runtime.background.BackgroundTask(..., tasks=supervisor)``).
A watched task that ends by itself — an exception, a return, or a ``CancelledError`` nobody asked
for — is logged once at ERROR (``background task died``, with the task's name and error),
recorded in :attr:`~TaskSupervisor.failures` and reported to the listeners:
:class:`runtime.health.HealthReporter` then turns every status it serves, ``liveness`` included,
NOT_SERVING for good, so Kubernetes restarts the pod (a queue worker's ``/healthz`` fails the
same way, :mod:`runtime.queue.runner`).

Ending on purpose is not a death: a task its owner cancelled (``task.cancel()``), a task
:meth:`~TaskSupervisor.release`\\ d before its owner stops it, and any task ending after
:meth:`~TaskSupervisor.close` (shutdown has begun).

Stopping is by a flag as well as by cancel (:func:`stop_tasks`): a cancel can be lost. On Python
3.11, ``asyncio.wait_for`` cancelled when its inner future has already finished returns that
result instead of raising (``asyncio/tasks.py`` ``wait_for``: ``except CancelledError: if
fut.done(): return fut.result()``; fixed in 3.12), and redis-py 5.3.1 writes every command of a
client with a ``socket_timeout`` through it (``redis/asyncio/connection.py`` line 489,
``Connection.send_packed_command``: ``await asyncio.wait_for(self._send_packed_command(command),
self.socket_timeout)``). A Redis call cancelled while its command is being written then returns
normally (about 40 % of random cancel moments in a script; none with ``socket_timeout=None``),
and the loop goes on with its next call, possibly on a pool its owner has disconnected meanwhile
(a fresh connection collected open: a ResourceWarning). So a loop checks the flag
(:attr:`TaskSupervisor.closing`, ``BackgroundTask.stopping``) and sleeps with ``pause()``, which
ends at once when stopping begins; a task still running after a grace is cancelled again, and
one still running at the end of the bound is logged (``background task ignored its stop``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from runtime.logging import get_logger

__all__ = ["STOP_GRACE_SECONDS", "TaskSupervisor", "death_of", "pause_until", "stop_tasks"]

log = get_logger("runtime.supervision")

T = TypeVar("T")

STOP_GRACE_SECONDS = 1.0
"""A stopped task still running this long after its cancel is cancelled again (its cancel may have
been lost, see the module docstring). Cleanup a task does on cancel should take less, or be shielded."""


async def pause_until(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less: until ``stopping`` is set (at once when it is already)."""
    if stopping.is_set():
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopping.wait()


async def stop_tasks(
    tasks: Iterable[asyncio.Task[Any]], within: float | None, *, grace: float = STOP_GRACE_SECONDS
) -> list[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait until they have ended, or at most ``within`` seconds (``None``: no
    bound); one still running after each ``grace`` is cancelled again. Returns those still
    running at the end (left running), each logged once at WARNING."""
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    while pending:
        for task in pending:
            task.cancel()
        wait = grace if deadline is None else min(grace, deadline - loop.time())
        if wait <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=wait)
    for task in pending:
        log.warning("background task ignored its stop", task=task.get_name(), within_s=within)
        task.add_done_callback(_retrieve)  # whatever it ends with later is not reported as unretrieved
    return list(pending)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def death_of(task: asyncio.Task[Any]) -> str | None:
    """Why a done ``task`` counts as dead, or ``None`` when it was cancelled on request."""
    if task.cancelled():
        # cancelling() counts the cancel() calls made on the task: 0 means a CancelledError from
        # something it awaited ended it, which nobody asked for.
        return None if task.cancelling() else "cancelled without being asked"
    error = task.exception()
    if error is not None:
        return f"{type(error).__name__}: {error}"
    return "returned, but should run until stopped"


class TaskSupervisor:
    """The long-lived tasks of one service; see the module docstring."""

    def __init__(self) -> None:
        self.failures: dict[str, str] = {}
        """Name of each task that died → why (never cleared: a dead loop stays dead)."""
        self.closing = False
        """Shutdown has begun: a loop checks it between its steps (a cancel may be lost)."""
        self._closed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners: list[Callable[[], None]] = []

    @property
    def running(self) -> list[asyncio.Task[Any]]:
        """The watched tasks that have not ended yet."""
        return [task for task in self._tasks if not task.done()]

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Start ``coro`` as a task called ``name`` and watch it."""
        return self.watch(asyncio.create_task(coro, name=name))

    def watch(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        """Report ``task`` if it ends by itself from now on; returns it."""
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def release(self, task: asyncio.Task[Any] | None) -> None:
        """Its owner is about to stop ``task`` (it may end any way now without being reported)."""
        if task is not None and task in self._tasks:
            self._tasks.discard(task)
            task.remove_done_callback(self._ended)

    def on_failure(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each death (read :attr:`failures` for what died)."""
        self._listeners.append(listener)

    async def pause(self, seconds: float) -> None:
        """A loop's sleep between steps: ``seconds``, or until shutdown begins."""
        await pause_until(self._closed, seconds)

    def close(self) -> None:
        """Shutdown has begun: from now on every watched task may end without being reported,
        and :meth:`pause` returns at once."""
        self.closing = True
        self._closed.set()

    async def stop(self, within: float | None = None) -> list[asyncio.Task[Any]]:
        """:meth:`close`, then :func:`stop_tasks` every task still running (bounded by ``within``
        seconds); returns those still running then (left running, logged)."""
        self.close()
        tasks, self._tasks = list(self._tasks), set()
        return await stop_tasks(tasks, within)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        reason = death_of(task)  # retrieves its exception, so asyncio does not report it again
        if reason is None or self.closing:
            return
        name = task.get_name()
        self.failures[name] = reason
        error = None if task.cancelled() else task.exception()
        log.error("background task died", task=name, error=reason, exc_info=error)
        for listener in self._listeners:
            listener()
