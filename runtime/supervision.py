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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from runtime.logging import get_logger

__all__ = ["TaskSupervisor", "death_of"]

log = get_logger("runtime.supervision")

T = TypeVar("T")


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

    def close(self) -> None:
        """Shutdown has begun: from now on every watched task may end without being reported."""
        self.closing = True

    async def stop(self, within: float | None = None) -> list[asyncio.Task[Any]]:
        """:meth:`close`, cancel every task still running and wait until they have ended, or at
        most ``within`` seconds; returns those still running then (left running)."""
        self.close()
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        if not tasks:
            return []
        _, late = await asyncio.wait(tasks, timeout=within)
        return list(late)

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
