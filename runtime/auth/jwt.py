"""OIDC / JWT bearer tokens, verified with PyJWT against the identity provider's JWKS.

Configured by ``AUTH_JWKS_URL`` (the provider's ``jwks_uri``), ``AUTH_JWT_ISSUER`` and
``AUTH_JWT_AUDIENCE`` (both required with a JWKS URL: a token minted for another application
must not get in) and ``AUTH_JWT_SCOPE_CLAIM`` (default ``scope``; a dotted path such as
``realm_access.roles`` reaches into nested claims). The claim is a space-separated string or a
list; entries named ``read``, ``operate`` or ``admin`` grant that scope (and what it implies).
A valid token without one of them is authenticated with no scope: every call answers 403.
Signing keys are fetched once and cached for 5 minutes (PyJWKClient); a token naming an unknown
``kid`` (the provider rotated its keys) refetches the set, at most once per 30 s so a flood of
forged ``kid`` values cannot turn the gateway against the provider.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jwt

from runtime.auth.scopes import Principal, Scope, granted_by
from runtime.config import CommonSettings
from runtime.errors import Unauthenticated

__all__ = ["JwtVerifier", "jwt_verifier_from_settings", "scopes_from_claim"]

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"]


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def scopes_from_claim(value: Any) -> frozenset[Scope]:
    """The scopes a claim value grants: ``"read operate"`` or ``["admin"]``; unknown entries ignored."""
    entries = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    granted: set[Scope] = set()
    for entry in entries:
        if isinstance(entry, str) and entry in {Scope.READ, Scope.OPERATE, Scope.ADMIN}:
            granted |= granted_by(Scope(entry))
    return frozenset(granted)


class JwtVerifier:
    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        scope_claim: str = "scope",
        refetch_cooldown_seconds: float = 30.0,
    ) -> None:
        self.client = jwt.PyJWKClient(
            jwks_url, cache_keys=True, lifespan=300, timeout=5, cooldown_duration=refetch_cooldown_seconds
        )
        self.issuer = issuer
        self.audience = audience
        self.scope_claim = scope_claim

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            key = self.client.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientConnectionError:
            raise Unauthenticated("token could not be verified: identity provider keys unreachable") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"invalid token: {error}") from None
        return claims

    async def __call__(self, token: str) -> Principal:
        # PyJWKClient fetches with urllib: off the event loop (cached keys make it quick).
        claims = await asyncio.to_thread(self._verify, token)
        return Principal(f"jwt:{claims['sub']}", "jwt", scopes_from_claim(_claim(claims, self.scope_claim)))


def jwt_verifier_from_settings(settings: CommonSettings) -> JwtVerifier | None:
    if not settings.auth_jwks_url:
        return None
    if not settings.auth_jwt_issuer or not settings.auth_jwt_audience:
        raise ValueError("AUTH_JWKS_URL needs AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE")
    return JwtVerifier(
        settings.auth_jwks_url,
        issuer=settings.auth_jwt_issuer,
        audience=settings.auth_jwt_audience,
        scope_claim=settings.auth_jwt_scope_claim,
    )
