"""How a service declares a queue: its functions, concurrency, retries, limits and retention."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from arq.worker import Function, func

from runtime.errors import InvalidArgument
from runtime.queue import schema
from runtime.queue.keys import QUEUE_NAME_PATTERN, QueueKeys
from runtime.queue.schedule import Schedule
from runtime.retry import RetryPolicy

JobFunction = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``max_jobs`` job starts in any sliding window of ``period_s`` seconds."""

    max_jobs: int
    period_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_jobs < 1 or self.period_s <= 0:
            raise ValueError("rate limit needs max_jobs >= 1 and period_s > 0")

    @property
    def period_ms(self) -> int:
        return max(int(self.period_s * 1000), 1)

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """``"30/1s"``, ``"10/500ms"`` or ``"5"`` (per second); ``""`` means no limit."""
        text = text.strip()
        if not text:
            return None
        count, _, period = text.partition("/")
        if not period:
            return cls(int(count))
        seconds = float(period[:-2]) / 1000 if period.endswith("ms") else float(period.rstrip("s") or 1)
        return cls(int(count), seconds)


@dataclass(frozen=True, slots=True)
class Retention:
    """Finished jobs kept: the last ``completed`` / ``failed`` ones, none older than ``max_age_s``.

    ``-1`` keeps every job of that state; ``0`` deletes a completed job as soon as it finishes.
    """

    completed: int = 100
    failed: int = 1000
    max_age_s: float = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue as a service declares it.

    ``functions`` are arq job functions (``async def f(ctx, **data)``) or ``arq.worker.func(...)``
    wrappers; a wrapper's ``timeout`` and ``max_tries`` override the queue's defaults per function.
    """

    name: str
    functions: Sequence[Function | JobFunction]
    concurrency: int = 50
    attempts: int = 3
    backoff: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3, base=1.0, cap=60.0))
    job_timeout_s: float = 300.0
    retention: Retention = field(default_factory=Retention)
    rate_limit: RateLimit | None = None
    key_rate_limit: RateLimit | None = None
    key_prefix_rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    """Further per-key limits for the rate keys that start with a prefix, on top of
    ``key_rate_limit`` (e.g. Telegram: every chat 1/s, and chats ``"chat:-"`` - groups - also 20/min)."""
    lease_s: float = 5.0
    """A live worker renews its leases every ``lease_s / 3``; a dead worker's job is re-run after
    at most ``lease_s`` + one reaper tick (``lease_s / 5``)."""
    max_payload_bytes: int = 512 * 1024
    shutdown_grace_s: float = 10.0
    schedules: Sequence[Schedule] = ()
    """Cron-style schedules of this queue's jobs, run by its workers, each tick exactly once
    (:mod:`runtime.queue.schedule`)."""
    data_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """JSON Schemas of job data by job name, where they are known from elsewhere (a queue rebuilt
    from its registry declaration); every other job's schema is derived from its function."""
    function_map: Mapping[str, Function] = field(init=False, repr=False, compare=False)
    _validators: dict[str, schema.DataValidator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wrapped = [f if isinstance(f, Function) else func(f, name=f.__name__) for f in self.functions]
        object.__setattr__(self, "function_map", {f.name: f for f in wrapped})
        object.__setattr__(self, "_validators", {})
        for name in self.function_map:
            if "\0" in name:  # a claim's reply joins a job's fields with NUL (runtime/queue/lua_worker.py)
                raise ValueError(f"job type {name!r}: a name may not hold a NUL character")
        if not QUEUE_NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"queue name {self.name!r} must match {QUEUE_NAME_PATTERN.pattern}")
        if self.concurrency < 1 or self.attempts < 1 or self.lease_s <= 0:
            raise ValueError("concurrency, attempts and lease_s must be positive")
        names = [s.name for s in self.schedules]
        if len(set(names)) != len(names):
            raise ValueError(f"queue {self.name!r}: schedule names must be unique ({names})")
        for schedule in self.schedules:
            try:
                self.check_data(schedule.job, schedule.data)
            except InvalidArgument as exc:
                raise ValueError(f"schedule {schedule.name!r}: {exc.message}") from None

    @property
    def keys(self) -> QueueKeys:
        return QueueKeys(self.name)

    def function(self, name: str) -> Function:
        found = self.function_map.get(name)
        if found is None:
            raise InvalidArgument("name", f"unknown job type {name!r} for queue {self.name!r}")
        return found

    def data_schema(self, name: str) -> Mapping[str, Any]:
        """The JSON Schema of job ``name``'s data (see :mod:`runtime.queue.schema`)."""
        declared = self.data_schemas.get(name)
        if declared is not None:
            return declared
        function = self.function(name)
        derived = _SCHEMA_CACHE.get(function.coroutine)
        if derived is None:
            derived = _SCHEMA_CACHE[function.coroutine] = schema.data_schema(name, function.coroutine)
        return derived

    def check_data(self, name: str, data: Mapping[str, Any]) -> None:
        """Raise InvalidArgument naming ``data.<key>`` when ``data`` breaks job ``name``'s schema."""
        check = self._validators.get(name)
        if check is None:
            check = self._validators[name] = schema.validator(self.data_schema(name))
        schema.check_data(name, check, data)

    def max_attempts_for(self, name: str) -> int:
        return self.function(name).max_tries or self.attempts

    def timeout_for(self, name: str) -> float:
        return self.function(name).timeout_s or self.job_timeout_s


_SIG_CACHE: dict[Any, inspect.Signature] = {}
_SCHEMA_CACHE: dict[Any, dict[str, Any]] = {}


def _signature(function: Function) -> inspect.Signature:
    sig = _SIG_CACHE.get(function.coroutine)
    if sig is None:
        sig = _SIG_CACHE[function.coroutine] = inspect.signature(function.coroutine)
    return sig
