"""Scopes, the principal a credential stands for, and the per-method scope declarations.

Three scopes a person or script can hold, each implying the ones below it::

    admin    clean, drain, remove, delete, resync, clear, API keys
    operate  enqueue, retry, pause, resume, send notifications, upload media
    read     status, queue and job reads

and ``internal``, required by RPCs only services call (status ``Ingest``, ``Clear``,
``Resync``; queue_admin ``DrainQueue``; ami_ingest ``RequestResync``): held by the internal
identity (``AUTH_INTERNAL_TOKEN``, or a client certificate under mTLS) and by ``admin``.
``PUBLIC`` declares a route deliberately open (health checks, ``/metrics``, the login page).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor

__all__ = ["PUBLIC", "Principal", "Scope", "granted_by", "method_scopes"]


class Scope(enum.StrEnum):
    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"
    INTERNAL = "internal"


PUBLIC = "public"
"""The declaration of a route or method anyone may call."""

_GRANTS: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.OPERATE: frozenset({Scope.READ, Scope.OPERATE}),
    Scope.ADMIN: frozenset(Scope),
    # Services act for the people who called the gateway, admins included.
    Scope.INTERNAL: frozenset(Scope),
}


def granted_by(scope: Scope) -> frozenset[Scope]:
    """Every scope a credential issued with ``scope`` satisfies (admin ⊇ operate ⊇ read)."""
    return _GRANTS[scope]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: what logs and the audit log name, and what they may do."""

    name: str
    """``key:<id>`` (``<name>``), ``bootstrap``, ``internal``, ``jwt:<subject>``, ``cert:<CN>``."""
    kind: str
    """``api_key``, ``bootstrap``, ``internal``, ``jwt``, ``certificate``."""
    scopes: frozenset[Scope]
    key_id: str | None = None

    def allows(self, needed: Scope) -> bool:
        return needed in self.scopes

    @property
    def top_scope(self) -> Scope:
        for scope in (Scope.ADMIN, Scope.OPERATE, Scope.READ):
            if scope in self.scopes:
                return scope
        return Scope.INTERNAL


def method_scopes(service: ServiceDescriptor, scopes: Mapping[str, Scope]) -> dict[str, Scope]:
    """``{"/pkg.Service/Method": scope}`` for every method of ``service``, checked complete.

    Raises ValueError naming the methods without a scope (or unknown names), so a service
    whose contract grows an RPC cannot start until the new RPC is declared.
    """
    names = {method.name for method in service.methods}
    missing = sorted(names - scopes.keys())
    unknown = sorted(scopes.keys() - names)
    if missing or unknown:
        raise ValueError(
            f"{service.full_name}: scopes must name every method exactly "
            f"(missing: {', '.join(missing) or '-'}; unknown: {', '.join(unknown) or '-'})"
        )
    declared = {f"/{service.full_name}/{name}": Scope(scope) for name, scope in scopes.items()}
    DECLARED.update(declared)
    return declared


DECLARED: dict[str, Scope] = {}
"""Every declaration :func:`method_scopes` has made in this process (the scope table reads it)."""
