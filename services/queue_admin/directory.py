"""Every declared queue, found through the Redis registry (:mod:`runtime.queue.registry`).

For each queue the directory hands out a :class:`QueueHandle`: its declaration, a
:class:`~runtime.queue.QueueAdmin` over its keys and a :class:`~runtime.queue.QueueClient`
built from the declaration (so an enqueue made here is validated exactly as in the service).
The last registry read is kept: while Redis is unreachable an enqueue to a known queue still
goes to the durable disk spool instead of failing.
"""

from __future__ import annotations

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
    def __init__(self, redis: Redis, *, spool: DiskSpool | None = None) -> None:
        self.redis = redis
        self.spool = spool
        self._handles: dict[str, QueueHandle] = {}
        self._known: dict[str, QueueDeclaration] = {}

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
        """Every declared queue, by name."""
        try:
            self._known = await declared(self.redis)
        except (RedisError, OSError) as exc:
            if not self._known:
                raise Unavailable(f"queue registry unreachable: {exc}") from exc
        return [await self._handle(d) for d in self._known.values()]

    def known(self) -> list[QueueHandle]:
        """The queues of the last successful registry read (no I/O)."""
        return list(self._handles.values())

    async def get(self, name: str) -> QueueHandle:
        """The queue ``name``; NotFound when no worker has declared it."""
        handles = {h.name: h for h in await self.all()}
        found = handles.get(name)
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
