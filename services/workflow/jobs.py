"""The workflow queue's job functions (arq convention: ``async def job(ctx, **data)``).

They simulate work from their data so the queue can be demonstrated, tested and benchmarked:
``duration_ms`` sleeps that long (reporting progress in four steps when it is 40 ms or more),
``fail_times`` raises a transient error on the first N attempts, ``fail_permanently`` raises a
PermanentError (never retried).  Data is checked at enqueue against the JSON Schema derived
from these signatures (runtime.queue.schema): unknown keys and wrong types are refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.errors import PermanentError, TransientError
from runtime.queue import JobContext


async def _simulate(
    ctx: JobContext, kind: str, duration_ms: int, fail_times: int, fail_permanently: bool
) -> dict[str, Any]:
    attempt = int(ctx["job_try"])
    if fail_permanently:
        raise PermanentError(f"{kind}: rejected for good (attempt {attempt})")
    if attempt <= fail_times:
        raise TransientError(f"{kind}: simulated transient failure on attempt {attempt} of {fail_times}")
    if duration_ms >= 40:
        for step in range(1, 5):
            await asyncio.sleep(duration_ms / 4000)
            await ctx.progress(step * 25)
    elif duration_ms > 0:
        await asyncio.sleep(duration_ms / 1000)
    return {"kind": kind, "attempt": attempt, "workedMs": duration_ms}


async def heavy_workflow_execution(
    ctx: JobContext, duration_ms: int = 0, fail_times: int = 0, fail_permanently: bool = False
) -> dict[str, Any]:
    return await _simulate(ctx, "heavy_workflow_execution", duration_ms, fail_times, fail_permanently)


async def user_variables_update(
    ctx: JobContext, duration_ms: int = 0, fail_times: int = 0, fail_permanently: bool = False
) -> dict[str, Any]:
    return await _simulate(ctx, "user_variables_update", duration_ms, fail_times, fail_permanently)


async def statistics_aggregation(
    ctx: JobContext, duration_ms: int = 0, fail_times: int = 0, fail_permanently: bool = False
) -> dict[str, Any]:
    return await _simulate(ctx, "statistics_aggregation", duration_ms, fail_times, fail_permanently)
