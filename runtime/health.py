"""grpc.health.v1 driven by dependency checks that really run.

A *health check* is an async callable that returns normally (or ``True``) when its dependency
works and raises (or returns ``False``) when it does not, e.g.
``runtime.redis.redis_health_check(client)``. :class:`HealthReporter` runs every named check
every ``interval`` seconds (each bounded by ``timeout``) and sets the status of each served
service and of the overall server (``""``) to SERVING only when all checks pass. With no
checks a live process is SERVING. On shutdown everything turns NOT_SERVING for good.

The ``liveness`` service is SERVING while the process runs, whatever its dependencies do (a Redis
outage must not restart pods), unless a supervised background task died
(:class:`runtime.supervision.TaskSupervisor`, ``tasks=``): then ``liveness``, the overall status
and every service turn NOT_SERVING at once and for good, so Kubernetes restarts the pod.

Transitions are logged as ``health changed`` with the failing checks and their errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from opentelemetry.instrumentation.utils import suppress_instrumentation

from runtime.logging import get_logger
from runtime.supervision import TaskSupervisor

__all__ = ["LIVENESS_SERVICE", "HealthCheck", "HealthReporter", "run_check"]

LIVENESS_SERVICE = "liveness"

HealthCheck = Callable[[], Awaitable[object]]
"""Async callable; passes when it returns anything but ``False`` without raising."""

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

log = get_logger("runtime.health")


async def run_check(check: HealthCheck, limit_seconds: float) -> str | None:
    """Run one check for at most ``limit_seconds``; ``None`` when it passed, else a short reason."""
    try:
        # Periodic pings are not traffic: keep them out of traces.
        with suppress_instrumentation():
            async with asyncio.timeout(limit_seconds):
                result = await check()
    except TimeoutError:
        return f"timed out after {limit_seconds:g}s"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "check returned False" if result is False else None


class _DrainingHealthServicer(HealthServicer):
    """The stock async servicer, except that ``Watch`` streams end once the server drains.

    Otherwise every open Watch (load balancers, the gateway) would hold the drain until the
    grace period runs out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.closing = asyncio.Event()

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        watch = asyncio.ensure_future(super().Watch(request, context))
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            await asyncio.wait({watch, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, closing):
                task.cancel()
            await asyncio.gather(watch, closing, return_exceptions=True)
        if watch.done() and not watch.cancelled():
            error = watch.exception()
            if error is not None:
                raise error


class HealthReporter:
    """Owns the grpc.health.v1 servicer and keeps it in step with the checks."""

    def __init__(
        self,
        service_names: Iterable[str],
        checks: Mapping[str, HealthCheck] | None = None,
        *,
        interval: float = 1.0,
        timeout: float = 1.0,
        tasks: TaskSupervisor | None = None,
    ) -> None:
        self.servicer = _DrainingHealthServicer()
        self.service_names = ["", *service_names]
        self.checks = dict(checks or {})
        self.interval = interval
        self.timeout = min(timeout, interval) if interval > 0 else timeout
        self.tasks = tasks
        self.failures: dict[str, str] = {}
        self.serving: bool | None = None
        self.live = True
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()

    async def evaluate(self) -> bool:
        """Run every check now and publish the result; True when SERVING."""
        names = list(self.checks)
        results = await asyncio.gather(*(run_check(self.checks[n], self.timeout) for n in names))
        failures = {name: reason for name, reason in zip(names, results, strict=True) if reason is not None}
        dead = self.tasks.failures if self.tasks is not None else {}
        failures.update({f"task {name}": reason for name, reason in dead.items()})
        serving = not failures
        if self._stopping:
            return False
        if serving != self.serving or failures.keys() != self.failures.keys():
            if serving:
                log.info("health changed", status="SERVING")
            else:
                log.warning("health changed", status="NOT_SERVING", failing=failures, live=not dead)
        self.failures = failures
        self.serving = serving
        self.live = not dead
        status = SERVING if serving else NOT_SERVING
        for name in self.service_names:
            await self.servicer.set(name, status)
        await self.servicer.set(LIVENESS_SERVICE, SERVING if self.live else NOT_SERVING)
        return serving

    async def start(self) -> None:
        """Publish NOT_SERVING, run the checks once, then keep re-running them in the background."""
        for name in self.service_names:
            await self.servicer.set(name, NOT_SERVING)
        await self.servicer.set(LIVENESS_SERVICE, SERVING)
        if self.tasks is not None:
            self.tasks.on_failure(self._wake.set)  # a death is published now, not at the next tick
        await self.evaluate()
        self._task = asyncio.create_task(self._loop(), name="health-checks")

    async def _loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.evaluate()
            except Exception:
                log.exception("health evaluation failed")

    async def shutdown(self) -> None:
        """NOT_SERVING from now on; stop re-evaluating."""
        self._stopping = True
        await self.servicer.enter_graceful_shutdown()
        # Give open Watch streams a moment to send NOT_SERVING before they are closed.
        await asyncio.sleep(0.05)
        self.servicer.closing.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
