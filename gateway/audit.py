"""The audit log of the gateway: who did what, when, with what outcome — in the database.

Every request to a route declared ``operate`` or ``admin`` (everything that changes state) is
written once its answer is known, by :class:`AuditMiddleware`: the principal (or ``anonymous``),
``METHOD /route/{template}``, the concrete path as target, and the outcome (``ok``,
``refused`` for 401/403, ``failed`` otherwise) with the HTTP status. Logins and logouts are
written by :mod:`gateway.login` through :func:`audit`. Entries go to the ``auth_audit_log``
table (:class:`runtime.auth.store.AuthStore`); a write that fails is logged as an error and
never changes the answer already sent.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.auth.audit import AUDITED_SCOPES, write_audit
from runtime.auth.http import HttpAuth
from runtime.auth.keys import AuditEntry
from runtime.auth.scopes import Principal

__all__ = ["AuditMiddleware", "audit"]


async def audit(request: Request, action: str, *, outcome: str, actor: str, target: str = "", detail: str = "") -> None:
    auth: HttpAuth = request.app.state.auth
    entry = AuditEntry(time.time(), actor, action, target or request.url.path, outcome, detail)
    await write_audit(auth.authenticator.store, entry)


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "refused"
    return "failed"


class AuditMiddleware:
    """Writes the audit entry of every state-changing request after its answer (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            await self._record(scope, status)

    async def _record(self, scope: Scope, status: int) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        required = state.get("required_scope")
        if required not in AUDITED_SCOPES:
            return
        principal: Principal | None = state.get("principal")
        route = scope.get("route")
        template = getattr(route, "path", scope["path"])
        detail = f"HTTP {status}"
        if state.get("auth_refused"):
            detail += f": {state['auth_refused']}"
        auth: HttpAuth = scope["app"].state.auth
        entry = AuditEntry(
            time.time(),
            principal.name if principal else "anonymous",
            f"{scope['method']} {template}",
            scope["path"],
            _outcome(status),
            detail,
        )
        await write_audit(auth.authenticator.store, entry)
