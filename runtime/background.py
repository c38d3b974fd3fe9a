"""A long-running asyncio task owned by one component: started once, cancelled and awaited on stop.

With ``tasks`` (a :class:`runtime.supervision.TaskSupervisor`) the task is supervised: ending by
itself before :meth:`BackgroundTask.stop` (an exception, a return) is logged and turns the
service's health, ``liveness`` included, NOT_SERVING.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from runtime.supervision import TaskSupervisor

__all__ = ["BackgroundTask"]


class BackgroundTask:
    def __init__(
        self, run: Callable[[], Coroutine[Any, Any, None]], name: str, *, tasks: TaskSupervisor | None = None
    ) -> None:
        self._run = run
        self.name = name
        self._supervisor = tasks
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task unless it is running already."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
            if self._supervisor is not None:
                self._supervisor.watch(self._task)

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended (whatever it raised)."""
        task, self._task = self._task, None
        if task is not None:
            if self._supervisor is not None:
                self._supervisor.release(task)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
