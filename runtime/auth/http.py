"""The HTTP side: FastAPI dependencies that declare and enforce the scope of every route.

Every route declares exactly one of::

    @router.get("/api/queues", dependencies=[requires(Scope.READ)])
    @router.post("/api/queues/{queue}/clean", dependencies=[requires(Scope.ADMIN)])
    @router.get("/healthz", dependencies=[public()])

(or once per router: ``APIRouter(dependencies=[requires(Scope.READ)])``; a route-level
``requires`` on top raises the bar for that route). :func:`declared_scope` reads the
declaration back; the gateway's scope-table test fails on any route without one.

A request authenticates with ``Authorization: Bearer <token>`` (API key, bootstrap token, OIDC
JWT; :class:`runtime.auth.Authenticator`) or with the browser session cookie
(:mod:`runtime.auth.sessions`). A state-changing request (anything but GET/HEAD/OPTIONS)
authenticated by the cookie must also carry the session's CSRF token in ``X-CSRF-Token`` and,
when the browser sends one, an ``Origin`` of this host. No credential → 401, a credential
without the scope → 403 (``runtime.errors.Unauthenticated`` / ``PermissionDenied``, rendered
by the app's error handlers); both are logged as ``auth refused`` without the credential.
The principal is left in ``request.state.principal`` (and the route's scope in
``request.state.required_scope``) for the audit log, a cookie session in ``request.state.session``
(pages render its CSRF token).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from runtime.auth.authenticator import Authenticator
from runtime.auth.scopes import PUBLIC, Principal, Scope
from runtime.auth.sessions import SESSION_COOKIE, Session, SessionCodec, fingerprint
from runtime.errors import PermissionDenied, SwitchboardError, Unauthenticated
from runtime.logging import get_logger

__all__ = ["CSRF_HEADER", "HttpAuth", "PublicRoute", "ScopeRequirement", "declared_scope", "public", "requires"]

log = get_logger("runtime.auth")

CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`python -m runtime.auth keys create`), AUTH_BOOTSTRAP_TOKEN or an OIDC access token.",
)


class HttpAuth:
    """What the dependencies need, kept in ``app.state.auth``."""

    def __init__(
        self,
        authenticator: Authenticator,
        sessions: SessionCodec,
        *,
        bootstrap_token: str | None = None,
        cookie_secure: bool = True,
    ) -> None:
        self.authenticator = authenticator
        self.sessions = sessions
        self.bootstrap_token = bootstrap_token
        self.cookie_secure = cookie_secure

    async def session_of(self, request: Request) -> Session | None:
        """The request's live session: cookie valid and its credential not revoked since."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        session = self.sessions.decode(cookie)
        if session is None:
            return None
        principal = session.principal
        if principal.kind == "api_key":
            if principal.key_id is None or not await self.authenticator.key_active(principal.key_id):
                return None
        elif principal.kind == "bootstrap":
            current = fingerprint(self.bootstrap_token) if self.bootstrap_token else ""
            if not current or not hmac.compare_digest(current, session.bootstrap_fingerprint):
                return None
        elif principal.kind != "jwt":
            return None
        return session

    async def identify(self, request: Request) -> Principal | None:
        """Who the request's bearer token or session cookie stands for, checked as for any request;
        None without a valid one. For accounting per caller (the gateway's caps per client), never
        for authorization: the route's :func:`requires` decides (scope, CSRF, origin)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if token.strip() and scheme.lower() == "bearer":
                return await self.authenticator.authenticate(token.strip())
            session = await self.session_of(request)
        except SwitchboardError:
            return None
        return session.principal if session is not None else None


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser request, or one the CSRF token still guards
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _refuse(request: Request, error: SwitchboardError, principal: Principal | None) -> SwitchboardError:
    log.warning(
        "auth refused",
        method=request.method,
        path=request.url.path,
        principal=principal.name if principal else None,
        reason=error.message,
        client=request.client.host if request.client else None,
    )
    return error


class ScopeRequirement:
    """The dependency behind :func:`requires`; ``scope`` is the declaration."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        auth: HttpAuth = request.app.state.auth
        request.state.required_scope = self.scope
        principal: Principal | None = None
        try:
            if credentials is not None:
                principal = await auth.authenticator.authenticate(credentials.credentials)
            elif request.headers.get("authorization"):
                raise Unauthenticated("unsupported Authorization scheme: send Authorization: Bearer <token>")
            else:
                session = await auth.session_of(request)
                if session is None:
                    raise Unauthenticated("missing credential: log in or send Authorization: Bearer <token>")
                principal = session.principal
                request.state.session = session
                if request.method not in _SAFE_METHODS:
                    sent = request.headers.get(CSRF_HEADER, "")
                    if not sent or not hmac.compare_digest(sent, session.csrf):
                        raise PermissionDenied(f"missing or wrong {CSRF_HEADER}")
                    if not same_origin(request):
                        raise PermissionDenied("cross-origin request refused")
            request.state.principal = principal
            if not principal.allows(self.scope):
                raise PermissionDenied(f"needs scope {self.scope.value}")
        except (Unauthenticated, PermissionDenied) as error:
            request.state.auth_refused = error.message
            raise _refuse(request, error, principal) from None
        return principal


class PublicRoute:
    """The dependency behind :func:`public`: declares the route open, checks nothing."""

    scope = PUBLIC

    async def __call__(self) -> None:
        return None


_PUBLIC = PublicRoute()
_REQUIREMENTS = {scope: ScopeRequirement(scope) for scope in Scope}


def requires(scope: Scope) -> Any:
    """``dependencies=[requires(Scope.READ)]``: the route needs ``scope`` (see module docstring)."""
    return Depends(_REQUIREMENTS[scope])


def public() -> Any:
    """``dependencies=[public()]``: the route is open to anyone, on purpose."""
    return Depends(_PUBLIC)


_RANK = {Scope.READ: 1, Scope.OPERATE: 2, Scope.ADMIN: 3, Scope.INTERNAL: 4}


def declared_scope(route: APIRoute) -> Scope | str | None:
    """The strongest scope declared on ``route`` (router and route level), ``PUBLIC``, or None."""
    found: list[Scope] = []
    is_public = False
    for dependency in route.dependencies:
        if not isinstance(dependency, DependsParam):
            continue
        if isinstance(dependency.dependency, ScopeRequirement):
            found.append(dependency.dependency.scope)
        elif isinstance(dependency.dependency, PublicRoute):
            is_public = True
    if found:
        return max(found, key=_RANK.__getitem__)
    return PUBLIC if is_public else None
