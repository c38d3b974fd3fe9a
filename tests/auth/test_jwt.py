"""OIDC / JWT bearer tokens, verified against a local JWKS server with keys this test made."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.app import create_app
from runtime.auth import Authenticator
from runtime.auth.jwt import JwtVerifier
from runtime.auth.scopes import Scope
from runtime.errors import Unauthenticated
from tests.auth.jwks_server import AUDIENCE, ISSUER, IdentityProvider, jwks_server
from tests.gateway.harness import Backends


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with jwks_server() as provider:
        yield provider


def authenticator(idp: IdentityProvider, claim: str = "scope", cooldown: float = 0.0) -> Authenticator:
    verifier = JwtVerifier(
        idp.url, issuer=ISSUER, audience=AUDIENCE, scope_claim=claim, refetch_cooldown_seconds=cooldown
    )
    return Authenticator(jwt=verifier, cache_seconds=0)


async def test_a_valid_token_grants_the_scopes_its_claim_names(idp: IdentityProvider) -> None:
    auth = authenticator(idp)
    reader = await auth.authenticate(idp.token(scope="openid read"))
    assert reader.name == "jwt:alice"
    assert reader.scopes == {Scope.READ}
    admin = await auth.authenticate(idp.token(sub="bob", scope=["profile", "admin"]))
    assert admin.allows(Scope.INTERNAL)
    nobody = await auth.authenticate(idp.token(scope="openid email"))
    assert nobody.scopes == frozenset()  # authenticated, allowed nothing: 403 everywhere


async def test_a_nested_claim_path_reaches_the_roles(idp: IdentityProvider) -> None:
    auth = authenticator(idp, claim="realm_access.roles")
    principal = await auth.authenticate(idp.token(realm_access={"roles": ["operate", "offline_access"]}))
    assert principal.scopes == {Scope.READ, Scope.OPERATE}


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.test"}, "(?i)issuer"),
        ({"aud": "another-app"}, "(?i)audience"),
        ({"exp": int(time.time()) - 60}, "(?i)expired"),
        ({"sub": None}, "sub"),
    ],
)
async def test_a_token_for_someone_else_or_out_of_date_is_refused(
    idp: IdentityProvider, claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        await authenticator(idp).authenticate(idp.token(scope="admin", **claims))


async def test_a_token_signed_with_a_key_the_provider_never_published_is_refused(idp: IdentityProvider) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthenticated, match="invalid token"):
        await authenticator(idp).authenticate(idp.token(key=forger, scope="admin"))
    unsigned = idp.token(scope="admin").rsplit(".", 1)[0] + "."
    with pytest.raises(Unauthenticated):
        await authenticator(idp).authenticate(unsigned)


async def test_a_rotated_key_is_fetched_when_a_token_names_it(idp: IdentityProvider) -> None:
    auth = authenticator(idp)
    await auth.authenticate(idp.token(scope="read"))
    idp.rotate("k2")
    principal = await auth.authenticate(idp.token(kid="k2", scope="read"))
    assert principal.scopes == {Scope.READ}
    assert idp.requests >= 2


async def test_unknown_key_ids_refetch_the_key_set_at_most_once_per_cooldown(idp: IdentityProvider) -> None:
    auth = authenticator(idp, cooldown=300.0)
    await auth.authenticate(idp.token(scope="read"))
    fetched = idp.requests
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for kid in ("forged-1", "forged-2", "forged-3"):
        with pytest.raises(Unauthenticated):
            await auth.authenticate(idp.token(kid=kid, key=forger, scope="admin"))
    assert idp.requests <= fetched + 1


@pytest.fixture
async def gateway_client(backends: Backends, idp: IdentityProvider) -> AsyncIterator[httpx.AsyncClient]:
    settings = backends.settings(
        auth_jwks_url=idp.url, auth_jwt_issuer=ISSUER, auth_jwt_audience=AUDIENCE, gateway_cookie_secure=False
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client,
    ):
        yield client


async def test_the_gateway_takes_oidc_tokens_as_bearer_and_for_a_browser_login(
    gateway_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    reader = {"Authorization": f"Bearer {idp.token(scope='read')}"}
    assert (await gateway_client.get("/api/queue-status/snapshot", headers=reader)).status_code == 200
    assert (await gateway_client.delete("/api/queue-status/clear", headers=reader)).status_code == 403
    expires = int(time.time()) + 120
    login = await gateway_client.post("/login", data={"token": idp.token(scope="admin", exp=expires)})
    assert login.status_code == 303
    max_age = int(login.headers["set-cookie"].lower().split("max-age=")[1].split(";")[0])
    assert max_age <= 120  # the session never outlives the token it came from
    assert (await gateway_client.get("/api/queue-status/snapshot")).status_code == 200
