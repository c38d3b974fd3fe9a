"""API key values and records, without the database (cheap to import for every process).

API keys look like ``sb_<id>_<secret>``: the 12-hex-digit id is public (listed, logged, named in
the audit log), the secret is 256 random bits shown once at creation. Only the SHA-256 of the
secret is stored: a key has far too much entropy to be guessed from its hash, so a slow
password hash would only cost CPU on every call without protecting anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from runtime.auth.scopes import Scope

__all__ = ["KEY_PREFIX", "ApiKey", "AuditEntry", "IssuedKey", "parse_key", "secret_digest"]

KEY_PREFIX = "sb_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scope: Scope
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    token: str
    """The full ``sb_<id>_<secret>``: shown once, never stored."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    target: str
    outcome: str
    detail: str = ""


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a token shaped like an API key, else None."""
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or not secret or any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret
