"""Writing the audit log (``auth_audit_log``): shared by the gateway's HTTP routes and every gRPC server.

What is audited: every call of a route or method that needs ``operate``, ``admin`` or ``internal``
(everything that changes state), refused ones included. On gRPC only calls made with a person's or
a script's credential (an API key, the bootstrap token, an OIDC token) and anonymous ones are
written: the services' own calls with the internal identity are the gateway acting for a caller
the gateway has already audited.

A write that fails is logged as ``audit write failed`` (an error) and never changes the answer.
:class:`AuditTrail` writes in the background, in order, so a gRPC answer never waits for the
database; ``drain()`` at shutdown waits (bounded) for the writes still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from runtime.auth.keys import AuditEntry
from runtime.auth.scopes import Principal, Scope
from runtime.errors import Unavailable
from runtime.logging import get_logger

if TYPE_CHECKING:
    from runtime.auth.authenticator import Authenticator
    from runtime.auth.store import AuthStore

__all__ = ["AUDITED_SCOPES", "AuditTrail", "audited_caller", "write_audit"]

log = get_logger("runtime.auth.audit")

AUDITED_SCOPES = frozenset({Scope.OPERATE, Scope.ADMIN, Scope.INTERNAL})
_SERVICE_KINDS = frozenset({"internal", "certificate"})

PENDING_LIMIT = 10_000
"""Audit entries that may wait for the database at once (see :class:`AuditTrail`)."""


def audited_caller(principal: Principal | None) -> bool:
    """Whether a gRPC call by ``principal`` (None: anonymous) goes into the audit log."""
    return principal is None or principal.kind not in _SERVICE_KINDS


async def write_audit(store: AuthStore | None, entry: AuditEntry) -> None:
    """Write ``entry``; a failure is logged, never raised."""
    if store is None:
        log.error("audit log unavailable", action=entry.action, actor=entry.actor, outcome=entry.outcome)
        return
    try:
        await store.record(entry)
    except Unavailable as error:
        log.error(
            "audit write failed", action=entry.action, actor=entry.actor, outcome=entry.outcome, error=repr(error)
        )
        return
    log.info("audit", action=entry.action, actor=entry.actor, target=entry.target, outcome=entry.outcome)


class AuditTrail:
    """Background audit writes through ``authenticator.store``, one at a time and in call order.

    At most :data:`PENDING_LIMIT` entries wait; past that an entry is logged as ``audit entry
    dropped`` (an error, with who and what) instead of growing the queue without bound.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self._queue: asyncio.Queue[AuditEntry] | None = None
        self._writer: asyncio.Task[None] | None = None

    def record(self, entry: AuditEntry) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue(PENDING_LIMIT)
            self._writer = asyncio.get_running_loop().create_task(self._write_all(self._queue), name="audit writer")
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            log.error("audit entry dropped", action=entry.action, actor=entry.actor, outcome=entry.outcome)

    async def _write_all(self, queue: asyncio.Queue[AuditEntry]) -> None:
        while True:
            entry = await queue.get()
            try:
                await write_audit(self.authenticator.store, entry)
            finally:
                queue.task_done()

    async def drain(self, within: float = 1.0) -> None:
        """Wait up to ``within`` seconds for the pending writes, then stop the writer (at shutdown)."""
        if self._queue is None or self._writer is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout=within)
        except TimeoutError:
            log.error("audit writes unfinished at shutdown", count=self._queue.qsize())
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._queue = self._writer = None
