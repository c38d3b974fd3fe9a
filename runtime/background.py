"""A long-running asyncio task owned by one component: started once, stopped and awaited on stop.

With ``tasks`` (a :class:`runtime.supervision.TaskSupervisor`) the task is supervised: ending by
itself before :meth:`BackgroundTask.stop` (an exception, a return) is logged and turns the
service's health, ``liveness`` included, NOT_SERVING.

:meth:`BackgroundTask.stop` stops the loop by a flag as well as by cancel, because a cancel can be
lost inside a Redis call (:mod:`runtime.supervision`'s docstring has the line in redis-py): the
loop runs ``while not task.stopping`` and sleeps with :meth:`BackgroundTask.pause`, which ends at
once on stop. The wait is bounded (``stop_within``): a task that ignores both is cancelled again
each second and, still running at the bound, is logged and left behind rather than holding its
owner's shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from runtime.supervision import TaskSupervisor, pause_until, stop_tasks

__all__ = ["STOP_WITHIN_SECONDS", "BackgroundTask"]

STOP_WITHIN_SECONDS = 5.0
"""How long :meth:`BackgroundTask.stop` waits for the task to end, by default."""


class BackgroundTask:
    def __init__(
        self,
        run: Callable[[], Coroutine[Any, Any, None]],
        name: str,
        *,
        tasks: TaskSupervisor | None = None,
        stop_within: float = STOP_WITHIN_SECONDS,
    ) -> None:
        self._run = run
        self.name = name
        self._supervisor = tasks
        self.stop_within = stop_within
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def stopping(self) -> bool:
        """:meth:`stop` has begun: the loop ends at its next check, whether its cancel arrived or not."""
        return self._stopping.is_set()

    async def pause(self, seconds: float) -> None:
        """The loop's sleep between steps: ``seconds``, or until :meth:`stop` begins."""
        await pause_until(self._stopping, seconds)

    def start(self) -> None:
        """Start the task unless it is running already."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=self.name)
            if self._supervisor is not None:
                self._supervisor.watch(self._task)

    async def stop(self) -> bool:
        """Set :attr:`stopping`, cancel the task and wait until it has ended (whatever it raised),
        at most :attr:`stop_within` seconds; False when it was still running then (logged)."""
        task, self._task = self._task, None
        self._stopping.set()
        if task is None:
            return True
        if self._supervisor is not None:
            self._supervisor.release(task)
        late = await stop_tasks([task], self.stop_within)
        if not late:
            # Retrieve whatever it raised, so asyncio does not report it as never retrieved.
            await asyncio.gather(task, return_exceptions=True)
        return not late
