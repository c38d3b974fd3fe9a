"""Bearer token → :class:`Principal`: the one place every credential kind is checked.

In order: ``AUTH_INTERNAL_TOKEN`` (the internal identity), ``AUTH_BOOTSTRAP_TOKEN`` (admin),
an API key (``sb_<id>_<secret>``, looked up in the database), a JWT (three dot-separated
parts, verified against ``AUTH_JWKS_URL`` when configured). Answers are cached for
``AUTH_KEY_CACHE_SECONDS`` (default 5 s) per token digest, so a hot RPC costs one SHA-256 and a
dict lookup, not a query. Given a Redis URL, the first API key looked up also starts a
:class:`runtime.auth.revocation.KeyChangeListener`, which empties the cache whenever a key is
revoked or created anywhere, so a revoked key stops working at once in every process (within the
cache lifetime only while Redis cannot be reached). Failures raise
:class:`runtime.errors.Unauthenticated` with a reason that never contains the credential.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from runtime.auth.keys import ApiKey, parse_key
from runtime.auth.revocation import KeyChangeListener
from runtime.auth.scopes import Principal, Scope, granted_by
from runtime.config import CommonSettings
from runtime.errors import Unauthenticated

__all__ = ["BOOTSTRAP", "INTERNAL", "Authenticator", "JwtVerify", "principal_for_key"]

if TYPE_CHECKING:
    from runtime.auth.store import AuthStore

JwtVerify = Callable[[str], Awaitable[Principal]]

INTERNAL = Principal("internal", "internal", granted_by(Scope.INTERNAL))
BOOTSTRAP = Principal("bootstrap", "bootstrap", granted_by(Scope.ADMIN))

_CACHE_LIMIT = 4096


def principal_for_key(key: ApiKey) -> Principal:
    return Principal(f"key:{key.id} ({key.name})", "api_key", granted_by(key.scope), key_id=key.id)


def _jwt_verifier(settings: CommonSettings) -> JwtVerify | None:
    from runtime.auth.jwt import jwt_verifier_from_settings

    return jwt_verifier_from_settings(settings)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Authenticator:
    def __init__(
        self,
        *,
        bootstrap_token: str | None = None,
        internal_token: str | None = None,
        store: AuthStore | None = None,
        database_url: str | None = None,
        jwt: JwtVerify | None = None,
        cache_seconds: float = 5.0,
        redis_url: str | None = None,
    ) -> None:
        self._bootstrap = _digest(bootstrap_token) if bootstrap_token else None
        self._internal = _digest(internal_token) if internal_token else None
        self._store = store
        self._database_url = database_url
        self._jwt = jwt
        self.cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[float, Principal | None, str]] = {}
        self._active: dict[str, tuple[float, bool]] = {}
        # Bumped by forget_all(): a lookup that started before a revocation does not cache its answer.
        self._generation = 0
        self._redis_url = redis_url
        self._listener: KeyChangeListener | None = None

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> Authenticator:
        """Tokens from the settings, API keys from ``AUTH_DATABASE_URL`` (else ``DATABASE_URL``),
        JWTs when ``AUTH_JWKS_URL`` is set, key changes from ``REDIS_URL`` when it is set."""
        bootstrap = settings.auth_bootstrap_token
        internal = settings.auth_internal_token
        return cls(
            bootstrap_token=bootstrap.get_secret_value() if bootstrap else None,
            internal_token=internal.get_secret_value() if internal else None,
            database_url=settings.auth_store_url,
            jwt=_jwt_verifier(settings) if settings.auth_jwks_url else None,
            cache_seconds=settings.auth_key_cache_seconds,
            # Only a Redis the process was given: the default (localhost) may be nobody's, and a
            # process without one falls back to the cache lifetime.
            redis_url=settings.redis_url if "redis_url" in settings.model_fields_set else None,
        )

    @property
    def store(self) -> AuthStore | None:
        """The API key store, opened on first use: SQLAlchemy costs a second of start-up that a
        process whose callers never present an API key does not need to pay."""
        if self._store is None and self._database_url is not None:
            from runtime.auth.store import AuthStore

            self._store = AuthStore(self._database_url)
        return self._store

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._store is not None:
            await self._store.close()

    def forget_all(self) -> None:
        """Drop every cached answer (a key changed somewhere): the next calls ask the database."""
        self._generation += 1
        self._cache.clear()
        self._active.clear()

    @property
    def listener(self) -> KeyChangeListener | None:
        """The key change listener, once an API key has been looked up (None without a Redis URL)."""
        return self._listener

    def _listen_for_key_changes(self) -> None:
        if self._listener is None and self._redis_url is not None:
            self._listener = KeyChangeListener(self._redis_url, self.forget_all)
            self._listener.start()

    async def authenticate(self, token: str | None) -> Principal:
        """The principal behind ``token``; raises Unauthenticated (or Unavailable: store down)."""
        if not token:
            raise Unauthenticated("missing credential: send Authorization: Bearer <token>")
        digest = _digest(token)
        if self._internal is not None and hmac.compare_digest(digest, self._internal):
            return INTERNAL
        if self._bootstrap is not None and hmac.compare_digest(digest, self._bootstrap):
            return BOOTSTRAP
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            principal, reason = cached[1], cached[2]
        else:
            generation = self._generation
            principal, reason = await self._lookup(token)
            if generation == self._generation:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[digest] = (now + self.cache_seconds, principal, reason)
        if principal is None:
            raise Unauthenticated(reason)
        return principal

    async def _lookup(self, token: str) -> tuple[Principal | None, str]:
        parts = parse_key(token)
        if parts is not None:
            if self.store is None:
                return None, "API keys are not accepted here"
            self._listen_for_key_changes()
            key = await self.store.verify_key(*parts)
            if key is None:
                return None, f"unknown or revoked API key {parts[0]}"
            return principal_for_key(key), ""
        if token.count(".") == 2 and self._jwt is not None:
            try:
                return await self._jwt(token), ""
            except Unauthenticated as error:
                return None, error.message
        return None, "unknown credential"

    async def key_active(self, key_id: str) -> bool:
        """Whether API key ``key_id`` is still active (cached like tokens; sessions ask this)."""
        now = time.monotonic()
        cached = self._active.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        if self.store is None:
            return False
        self._listen_for_key_changes()
        generation = self._generation
        active = await self.store.key_active(key_id)
        if generation == self._generation:
            if len(self._active) >= _CACHE_LIMIT:
                self._active.clear()
            self._active[key_id] = (now + self.cache_seconds, active)
        return active

    def accepts_bootstrap(self, token: str) -> bool:
        return self._bootstrap is not None and hmac.compare_digest(_digest(token), self._bootstrap)
