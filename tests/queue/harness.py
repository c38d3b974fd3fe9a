"""The queue tests' building blocks: workflow settings with short timings, and what a test waits on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from devsupport.procs import ServiceProcess
from runtime.queue import QueueAdmin
from services.workflow.settings import WorkflowSettings

# Short timings so every behaviour shows within a second or two.
TEST_SETTINGS: dict[str, Any] = {
    "backoff_base_s": 0.05,
    "backoff_cap_s": 0.2,
    "lease_s": 1.0,
    "job_timeout_s": 5.0,
    "shutdown_grace_s": 2.0,
}

StartWorkers = Callable[..., Awaitable[list[ServiceProcess]]]


def settings(redis_url: str, **overrides: Any) -> WorkflowSettings:
    """Workflow settings with the test timings; ``overrides`` name queue knobs without the prefix."""
    knobs = {f"workflow_{k}": v for k, v in {**TEST_SETTINGS, **overrides}.items()}
    return WorkflowSettings(redis_url=redis_url, **knobs)


def worker_env(s: WorkflowSettings) -> dict[str, str]:
    return s.worker_environment()


async def workers_at_least(admin: QueueAdmin, n: int) -> bool:
    return len(await admin.workers()) >= n


async def settled(admin: QueueAdmin) -> bool:
    """Nothing waits, runs or is delayed any more."""
    counts = await admin.counts()
    return counts.waiting + counts.active + counts.delayed == 0
