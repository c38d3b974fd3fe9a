"""Browser sessions: a signed cookie naming the principal, with the CSRF token of the session.

The cookie is signed (itsdangerous, HMAC-SHA1 over a key derived from ``AUTH_SESSION_SECRET``)
and carries no credential: the principal's name and kind, its top scope, the API key id (so
revoking the key ends its sessions at once, :mod:`runtime.auth.revocation`), a fingerprint of the
bootstrap token it came from (a rotated token ends them), an expiry (never past a JWT's own)
and a random CSRF token. It is ``Secure``, ``HttpOnly`` and ``SameSite=Strict``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from runtime.auth.scopes import Principal, Scope, granted_by

__all__ = ["SESSION_COOKIE", "Session", "SessionCodec"]

SESSION_COOKIE = "sb_session"


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str
    expires_at: float
    bootstrap_fingerprint: str = ""


def fingerprint(token: str) -> str:
    return hashlib.sha256(b"sb-session:" + token.encode()).hexdigest()[:16]


class SessionCodec:
    def __init__(self, secret: str, *, max_age_seconds: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="switchboard-session")
        self.max_age_seconds = max_age_seconds

    def new(
        self, principal: Principal, *, expires_at: float | None = None, bootstrap_token: str | None = None
    ) -> Session:
        limit = time.time() + self.max_age_seconds
        return Session(
            principal,
            csrf=secrets.token_urlsafe(24),
            expires_at=min(limit, expires_at) if expires_at else limit,
            bootstrap_fingerprint=fingerprint(bootstrap_token) if bootstrap_token else "",
        )

    def encode(self, session: Session) -> str:
        p = session.principal
        return self._serializer.dumps(
            {
                "n": p.name,
                "k": p.kind,
                "s": sorted(s.value for s in p.scopes),
                "kid": p.key_id,
                "c": session.csrf,
                "e": session.expires_at,
                "b": session.bootstrap_fingerprint,
            }
        )

    def decode(self, cookie: str) -> Session | None:
        """The session in ``cookie``, or None when forged, garbled or expired."""
        try:
            data = self._serializer.loads(cookie, max_age=int(self.max_age_seconds))
            scopes = frozenset(Scope(s) for s in data["s"])
            session = Session(
                Principal(str(data["n"]), str(data["k"]), scopes, data.get("kid")),
                csrf=str(data["c"]),
                expires_at=float(data["e"]),
                bootstrap_fingerprint=str(data.get("b", "")),
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        if session.expires_at <= time.time() or not scopes <= granted_by(Scope.ADMIN):
            return None
        return session
