"""The auth tables (API keys, audit log) and the one class that reads and writes them.

Key values and records are in :mod:`runtime.auth.keys`. A database error surfaces as
:class:`runtime.errors.Unavailable` (``credential store unavailable``): the caller cannot be
checked now, which is not the same as a bad credential.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.auth.keys import KEY_PREFIX, ApiKey, AuditEntry, IssuedKey, secret_digest
from runtime.auth.scopes import Scope
from runtime.db import create_engine
from runtime.errors import Unavailable
from runtime.logging import get_logger

log = get_logger("runtime.auth")

__all__ = ["AuthStore", "api_keys", "audit_log", "metadata"]

metadata = sa.MetaData()

api_keys = sa.Table(
    "auth_api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

audit_log = sa.Table(
    "auth_audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("target", sa.String(512), nullable=False, server_default=""),
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)


def _unavailable(error: SQLAlchemyError) -> Unavailable:
    log.warning("credential store unavailable", error=type(error).__name__)
    return Unavailable("credential store unavailable")


def _key(row: Any) -> ApiKey:
    return ApiKey(row.id, row.name, Scope(row.scope), row.created_at, row.revoked_at)


class AuthStore:
    """API keys and the audit log in the service database (tables from runtime/auth/migrations)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        """Created on first use: a process that never sees an API key never opens the database."""
        if self._engine is None:
            self._engine = create_engine(self.url)
        return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def create_key(self, name: str, scope: Scope) -> IssuedKey:
        if scope is Scope.INTERNAL:
            raise ValueError("the internal identity is not an API key (AUTH_INTERNAL_TOKEN or a client certificate)")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, name, scope, time.time(), None)
        async with self.engine.begin() as connection:
            await connection.execute(
                api_keys.insert().values(
                    id=key.id,
                    name=name,
                    scope=scope.value,
                    secret_sha256=secret_digest(secret),
                    created_at=key.created_at,
                )
            )
        return IssuedKey(key, f"{KEY_PREFIX}{key_id}_{secret}")

    async def list_keys(self, *, include_revoked: bool = True) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self.engine.connect() as connection:
            return [_key(row) for row in await connection.execute(query)]

    async def revoke_key(self, key_id: str) -> ApiKey | None:
        """Revoke ``key_id`` (idempotent); None when no such key exists."""
        async with self.engine.begin() as connection:
            await connection.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            row = (await connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
        return _key(row) if row is not None else None

    async def verify_key(self, key_id: str, secret: str) -> ApiKey | None:
        """The active key ``key_id`` when ``secret`` is its secret, else None."""
        query = sa.select(api_keys).where(api_keys.c.id == key_id)
        try:
            async with self.engine.connect() as connection:
                row = (await connection.execute(query)).first()
        except SQLAlchemyError as error:
            raise _unavailable(error) from None
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_sha256, secret_digest(secret)):
            return None
        return _key(row)

    async def key_active(self, key_id: str) -> bool:
        query = sa.select(api_keys.c.revoked_at).where(api_keys.c.id == key_id)
        try:
            async with self.engine.connect() as connection:
                row = (await connection.execute(query)).first()
        except SQLAlchemyError as error:
            raise _unavailable(error) from None
        return row is not None and row.revoked_at is None

    async def record(self, entry: AuditEntry) -> None:
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    audit_log.insert().values(
                        at=entry.at,
                        actor=entry.actor,
                        action=entry.action,
                        target=entry.target[:512],
                        outcome=entry.outcome,
                        detail=entry.detail,
                    )
                )
        except SQLAlchemyError as error:
            raise _unavailable(error) from None

    async def audit_entries(self, *, limit: int = 100) -> list[AuditEntry]:
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        async with self.engine.connect() as connection:
            return [
                AuditEntry(r.at, r.actor, r.action, r.target, r.outcome, r.detail)
                for r in await connection.execute(query)
            ]
