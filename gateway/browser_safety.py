"""Browser safety on every answer: allowed hosts, CSP, no framing, no sniffing, no wildcard CORS.

- **Allowed hosts** (``GATEWAY_ALLOWED_HOSTS``, comma-separated, ``*.example.com`` for a domain's
  subdomains): a request whose ``Host`` is not listed gets 400, so a DNS-rebinding page cannot
  talk to the gateway under its own name. ``/healthz``, ``/readyz`` and ``/metrics`` are exempt:
  Kubernetes probes and scrapers address the pod by IP, and those answer no contact-center data.
- **Headers** on every response: a ``Content-Security-Policy`` allowing only this origin's
  scripts, styles and connections (the pages use no inline script or style) with
  ``frame-ancestors 'none'``, ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin``. ``/docs`` and ``/redoc`` (FastAPI's API explorers) load their
  bundle from cdn.jsdelivr.net with an inline bootstrap script and get a policy allowing that.
- **CORS**: none by default (browsers then refuse other origins' reads); ``GATEWAY_CORS_ORIGINS``
  lists exact origins to allow, never ``*`` (settings refuse it).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BrowserSafety", "host_allowed"]

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
HOST_EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" on form posts,
    # and the login and CSRF checks compare the Origin with the Host.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _host_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):  # [::1]:8080
                return host[: host.find("]") + 1] if "]" in host else host
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        if pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:]) and host != pattern[2:]):
            return True
    return False


class BrowserSafety:
    """Pure ASGI: checks ``Host``, then adds the headers to whatever the app answers."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed_hosts = tuple(h.strip().lower() for h in allowed_hosts if h.strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path not in HOST_EXEMPT_PATHS and not host_allowed(_host_of(scope), self.allowed_hosts):
            await _refuse_host(scope, send)
            return
        policy = (DOCS_POLICY if path.startswith(DOCS_PATHS) else PAGE_POLICY).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", policy), *_COMMON_HEADERS]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse_host(scope: Scope, send: Send) -> None:
    body = b'{"success":false,"error":{"code":"INVALID_ARGUMENT","message":"host not allowed","details":{}}}'
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
