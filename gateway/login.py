"""Browser login: ``/login`` turns a credential into a session cookie, ``/logout`` ends it.

The form takes an API key, the bootstrap token or an OIDC access token (whatever
:class:`runtime.auth.Authenticator` accepts). A page reached without a session answers 401 with
this form in place (:func:`login_page`), which posts back and returns to the page. Login and
logout check that a browser's ``Origin`` is this host (no login CSRF); logout also needs the
session's CSRF token. Both are written to the audit log.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.audit import audit
from gateway.templating import templates
from runtime.auth.http import HttpAuth, public, same_origin
from runtime.auth.sessions import SESSION_COOKIE
from runtime.errors import SwitchboardError
from runtime.logging import get_logger

__all__ = ["login_page", "router"]

log = get_logger("gateway.login")

router = APIRouter(tags=["login"], dependencies=[public()])

MAX_FORM_BYTES = 16 * 1024


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/dashboard"
    return value


def login_page(
    request: Request, *, status_code: int = 401, error: str = "", next_path: str | None = None
) -> HTMLResponse:
    target = (
        next_path
        if next_path is not None
        else request.url.path + (f"?{request.url.query}" if request.url.query else "")
    )
    context = {"error": error, "next": _safe_next(target)}
    return templates.TemplateResponse(request, "login.html", context, status_code=status_code)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items() if values}


@router.get("/login", response_class=HTMLResponse, summary="The login form")
async def login_form(request: Request, next: str = "/dashboard") -> HTMLResponse:
    return login_page(request, status_code=200, next_path=next)


def _jwt_expiry(token: str) -> float | None:
    import jwt  # only for OIDC logins (already verified: this reads the expiry, nothing else)

    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


@router.post(
    "/login",
    summary="Log in with an API key, the bootstrap token or an OIDC access token",
    response_class=HTMLResponse,
    responses={
        200: {"description": "The login form again, saying why the credential was refused"},
        303: {"description": "Logged in: the session cookie is set; Location is the page asked for"},
        403: {"description": "A cross-site login, refused (the login form)", "content": {"text/html": {}}},
    },
)
async def login(request: Request) -> Response:
    auth: HttpAuth = request.app.state.auth
    form = await _form(request)
    next_path = _safe_next(form.get("next"))
    if not same_origin(request):
        return login_page(request, status_code=403, error="Cross-site login refused.", next_path=next_path)
    token = form.get("token", "").strip()
    try:
        principal = await auth.authenticator.authenticate(token)
    except SwitchboardError as error:
        log.warning("login refused", reason=error.message, client=request.client.host if request.client else None)
        await audit(request, "login", outcome="refused", actor="anonymous", detail=error.message)
        return login_page(request, error="That credential was not accepted.", next_path=next_path)
    if principal.kind not in {"api_key", "bootstrap", "jwt"}:
        await audit(request, "login", outcome="refused", actor=principal.name, detail="not a person's credential")
        return login_page(request, error="That credential cannot open a browser session.", next_path=next_path)
    session = auth.sessions.new(
        principal,
        expires_at=_jwt_expiry(token) if principal.kind == "jwt" else None,
        bootstrap_token=token if principal.kind == "bootstrap" else None,
    )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        auth.sessions.encode(session),
        max_age=max(1, int(session.expires_at - time.time())),
        path="/",
        secure=auth.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    await audit(request, "login", outcome="ok", actor=principal.name)
    log.info("login", principal=principal.name)
    return response


@router.post(
    "/logout",
    summary="End the browser session",
    status_code=303,
    response_class=HTMLResponse,
    responses={
        303: {"description": "Logged out (or no session): Location is /login"},
        403: {
            "description": "A stale page or a cross-site request, refused (the login form)",
            "content": {"text/html": {}},
        },
    },
)
async def logout(request: Request) -> Response:
    auth: HttpAuth = request.app.state.auth
    form = await _form(request)
    session = await auth.session_of(request)
    response = RedirectResponse("/login", status_code=303)
    if session is None:
        return response
    if not same_origin(request) or form.get("csrf") != session.csrf:
        return login_page(request, status_code=403, error="Logout refused: stale page.", next_path="/dashboard")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=auth.cookie_secure, httponly=True, samesite="strict")
    await audit(request, "logout", outcome="ok", actor=session.principal.name)
    return response


def page_context(request: Request) -> dict[str, Any]:
    """What every page template needs: the CSRF token of the session and who is logged in."""
    session = getattr(request.state, "session", None)
    principal = getattr(request.state, "principal", None)
    return {"csrf": session.csrf if session else "", "who": principal.name if principal else ""}
