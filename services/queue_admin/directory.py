"""Every declared queue, found through the Redis registry (:mod:`runtime.queue.registry`).

For each queue the directory hands out a :class:`QueueHandle`: its declaration, a
:class:`~runtime.queue.QueueAdmin` over its keys and a :class:`~runtime.queue.QueueClient`
built from the declaration (so an enqueue made here is validated exactly as in the service).
Every declaration seen is kept (in memory and in the spool's file, so across restarts too):
while Redis is unreachable an enqueue to a known queue still goes to the durable disk spool
instead of failing. A queue declared before but missing from the registry now (Redis restarted
without its data, and no worker has heartbeated since) answers UNAVAILABLE, never NOT_FOUND:
it exists, Redis just does not know it yet. Registry reads are bounded by ``registry_budget_s``
so a stalled Redis costs the caller at most that before the known declarations answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.errors import NotFound, Unavailable
from runtime.logging import get_logger
from runtime.queue import DiskSpool, QueueAdmin, QueueClient
from runtime.queue.registry import QueueDeclaration, declared

__all__ = ["QueueDirectory", "QueueHandle"]

log = get_logger("queue_admin.directory")


@dataclass(frozen=True, slots=True)
class QueueHandle:
    declaration: QueueDeclaration
    admin: QueueAdmin
    client: QueueClient

    @property
    def name(self) -> str:
        return self.declaration.name


def _shape(declaration: QueueDeclaration) -> QueueDeclaration:
    return dataclasses.replace(declaration, declared_at=0)


class QueueDirectory:
    def __init__(self, redis: Redis, *, spool: DiskSpool | None = None, registry_budget_s: float = 1.0) -> None:
        self.redis = redis
        self.spool = spool
        self.registry_budget_s = registry_budget_s
        self._handles: dict[str, QueueHandle] = {}
        self._known: dict[str, QueueDeclaration] = {}
        self._missing: set[str] = set()
        """Known queues absent from the last registry read (Redis lost them)."""
        if spool is not None:
            self._known = {name: QueueDeclaration.from_json(raw) for name, raw in spool.remembered().items()}

    async def start(self) -> None:
        """Open a client for every declared queue, flushing what an earlier run left in the spool."""
        try:
            await self.all()
        except Unavailable as exc:
            log.warning("queue registry unreadable at start; retried on first use", error=str(exc))

    async def close(self) -> None:
        for handle in self._handles.values():
            await handle.client.close()
        self._handles.clear()
        if self.spool is not None:
            self.spool.close()

    async def all(self) -> list[QueueHandle]:
        """Every declared queue, by name (the ones Redis lost included: see :meth:`get`)."""
        try:
            async with asyncio.timeout(self.registry_budget_s):
                fresh = await declared(self.redis)
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._known:
                raise Unavailable(f"queue registry unreachable: {exc or 'timed out'}") from exc
        else:
            self._missing = set(self._known) - set(fresh)
            if self._missing:
                log.warning("declared queues missing from the registry", queues=sorted(self._missing))
            changed = {
                name: d
                for name, d in fresh.items()
                if name not in self._known or _shape(self._known[name]) != _shape(d)
            }
            self._known = dict(sorted({**self._known, **fresh}.items()))
            if changed and self.spool is not None:
                await asyncio.to_thread(self.spool.remember, {name: d.to_json() for name, d in changed.items()})
        return [await self._handle(d) for d in self._known.values()]

    def known(self) -> list[QueueHandle]:
        """The queues of the last successful registry read (no I/O)."""
        return list(self._handles.values())

    async def get(self, name: str) -> QueueHandle:
        """The queue ``name``; NotFound when no worker has declared it."""
        handles = {h.name: h for h in await self.all()}
        found = handles.get(name)
        if name in self._missing:
            raise Unavailable(
                f"queue {name!r} is declared but Redis lost its registry entry (a restart without "
                "its data?); it is back with its workers' next heartbeat",
                details={"queue": name},
            )
        if found is None:
            known = ", ".join(handles) or "none"
            raise NotFound(f"queue {name!r} is not declared (declared: {known})", details={"queue": name})
        return found

    async def _handle(self, declaration: QueueDeclaration) -> QueueHandle:
        current = self._handles.get(declaration.name)
        if current is not None and _shape(current.declaration) == _shape(declaration):
            return current
        spec = declaration.to_spec()
        client = QueueClient(spec, self.redis, spool=self.spool)
        await client.start()
        handle = QueueHandle(declaration, QueueAdmin(spec, self.redis), client)
        self._handles[declaration.name] = handle
        if current is not None:
            await current.client.close()
        return handle
