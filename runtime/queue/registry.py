"""The registry of declared queues: what each queue is, readable by anyone holding the Redis URL.

Every worker writes its queue's :class:`QueueDeclaration` (JSON) into the HASH
``sbq:v2:registry`` (field = queue name) with each heartbeat, so the registry survives a Redis
restart without persistence within a second of a worker being back.  The declaration carries
what an admin needs without importing the service's code: concurrency, default attempts, rate
limits, the payload limit, and each job function's keyword parameters, from which
:meth:`QueueDeclaration.to_spec` rebuilds a :class:`QueueSpec` whose functions have the same
signatures — so an admin process validates and enqueues through the ordinary
:class:`~runtime.queue.producer.QueueClient` exactly as the service itself would.  Those
rebuilt functions are descriptions only: jobs run in the service's workers, never in the admin.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from arq.worker import func
from redis.asyncio import Redis

from runtime.errors import PermanentError
from runtime.queue import codec, schema
from runtime.queue.keys import PREFIX
from runtime.queue.spec import QueueSpec, RateLimit, _signature

REGISTRY_KEY = f"{PREFIX}:registry"
"""HASH queue name -> declaration JSON."""


@dataclass(frozen=True, slots=True)
class JobDeclaration:
    name: str
    params: tuple[str, ...]
    """Keyword parameters after ``ctx``, in order."""
    required: tuple[str, ...]
    any_keywords: bool
    """The function takes ``**kwargs``: any data key is accepted."""
    max_attempts: int | None
    timeout_s: float | None


@dataclass(frozen=True, slots=True)
class QueueDeclaration:
    name: str
    concurrency: int
    attempts: int
    max_payload_bytes: int
    jobs: tuple[JobDeclaration, ...]
    rate_limit: RateLimit | None = None
    key_rate_limit: RateLimit | None = None
    declared_at: int = 0
    """Epoch ms of the last write (a worker's heartbeat)."""
    data_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Each job's data JSON Schema, by job name (derived from its function's signature)."""

    @classmethod
    def of(cls, spec: QueueSpec) -> QueueDeclaration:
        jobs = []
        for name, function in spec.function_map.items():
            params = list(_signature(function).parameters.values())[1:]  # after ctx
            keyword = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            jobs.append(
                JobDeclaration(
                    name=name,
                    params=tuple(p.name for p in keyword),
                    required=tuple(p.name for p in keyword if p.default is p.empty),
                    any_keywords=any(p.kind is p.VAR_KEYWORD for p in params),
                    max_attempts=function.max_tries,
                    timeout_s=function.timeout_s,
                )
            )
        return cls(
            name=spec.name,
            concurrency=spec.concurrency,
            attempts=spec.attempts,
            max_payload_bytes=spec.max_payload_bytes,
            jobs=tuple(jobs),
            rate_limit=spec.rate_limit,
            key_rate_limit=spec.key_rate_limit,
            data_schemas={name: spec.data_schema(name) for name in spec.function_map},
        )

    @property
    def job_names(self) -> list[str]:
        return [job.name for job in self.jobs]

    def job_data_schemas(self) -> dict[str, Mapping[str, Any]]:
        """Every job's data schema; one a worker predating schemas did not publish is derived
        from the declared parameters (names and required ones, any types)."""
        return {
            job.name: self.data_schemas.get(job.name) or schema.data_schema(job.name, _described(job))
            for job in self.jobs
        }

    def to_json(self) -> str:
        def limit(rate: RateLimit | None) -> list[float] | None:
            return [rate.max_jobs, rate.period_s] if rate else None

        return codec.dumps(
            {
                "name": self.name,
                "concurrency": self.concurrency,
                "attempts": self.attempts,
                "maxPayloadBytes": self.max_payload_bytes,
                "rateLimit": limit(self.rate_limit),
                "keyRateLimit": limit(self.key_rate_limit),
                "jobs": [
                    [j.name, list(j.params), list(j.required), j.any_keywords, j.max_attempts, j.timeout_s]
                    for j in self.jobs
                ],
                "at": int(time.time() * 1000),
                # Beside "jobs", not inside its rows, so a reader that predates it ignores it.
                "schemas": self.data_schemas,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> QueueDeclaration:
        d = json.loads(raw)

        def limit(value: list[float] | None) -> RateLimit | None:
            return RateLimit(int(value[0]), float(value[1])) if value else None

        return cls(
            name=d["name"],
            concurrency=int(d["concurrency"]),
            attempts=int(d["attempts"]),
            max_payload_bytes=int(d["maxPayloadBytes"]),
            jobs=tuple(JobDeclaration(n, tuple(p), tuple(r), bool(a), m, t) for n, p, r, a, m, t in d["jobs"]),
            rate_limit=limit(d.get("rateLimit")),
            key_rate_limit=limit(d.get("keyRateLimit")),
            declared_at=int(d.get("at", 0)),
            data_schemas=d.get("schemas") or {},
        )

    def to_spec(self) -> QueueSpec:
        """A spec with functions of the declared signatures, for validating and enqueueing."""
        return QueueSpec(
            name=self.name,
            functions=[
                func(_described(job), name=job.name, max_tries=job.max_attempts, timeout=job.timeout_s)
                for job in self.jobs
            ],
            concurrency=self.concurrency,
            attempts=self.attempts,
            rate_limit=self.rate_limit,
            key_rate_limit=self.key_rate_limit,
            max_payload_bytes=self.max_payload_bytes,
            data_schemas=self.data_schemas,
        )


def _described(job: JobDeclaration) -> Any:
    async def declared_elsewhere(ctx: Any, **data: Any) -> None:
        raise PermanentError(f"job {job.name!r} runs in its service's worker, not here")

    P = inspect.Parameter
    params = [P("ctx", P.POSITIONAL_OR_KEYWORD)]
    params += [P(n, P.KEYWORD_ONLY, **({} if n in job.required else {"default": None})) for n in job.params]
    if job.any_keywords:
        params.append(P("data", P.VAR_KEYWORD))
    declared_elsewhere.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    declared_elsewhere.__name__ = job.name
    return declared_elsewhere


def declaration_field(spec: QueueSpec) -> Mapping[str, str]:
    """The registry entry of ``spec`` (``HSET REGISTRY_KEY`` mapping)."""
    return {spec.name: QueueDeclaration.of(spec).to_json()}


async def declare(redis: Redis, spec: QueueSpec) -> None:
    await cast(Awaitable[int], redis.hset(REGISTRY_KEY, mapping=dict(declaration_field(spec))))


async def declared(redis: Redis) -> dict[str, QueueDeclaration]:
    """Every declared queue, by name (sorted)."""
    raw = await cast(Awaitable[dict[bytes, bytes]], redis.hgetall(REGISTRY_KEY))
    found = [QueueDeclaration.from_json(value) for value in raw.values()]
    return {d.name: d for d in sorted(found, key=lambda d: d.name)}


async def forget(redis: Redis, name: str) -> bool:
    return bool(await cast(Awaitable[int], redis.hdel(REGISTRY_KEY, name)))
