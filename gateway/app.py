"""The gateway's ASGI app: HTTP/JSON in front of the gRPC services, plus the live dashboard.

``create_app(settings)`` wires everything; the channels to the backends open in the lifespan
startup and close at shutdown. ``python -m gateway`` serves it with uvicorn.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from opentelemetry.trace import TracerProvider

from gateway import (
    dashboard,
    login,
    media_page,
    notify_dashboard,
    queue_dashboard,
    routes_media,
    routes_notify,
    routes_ops,
    routes_queues,
    routes_status,
)
from gateway.audit import AuditMiddleware
from gateway.backends import Backends
from gateway.browser_safety import BrowserSafety
from gateway.client_caps import ClientCaps
from gateway.errors import install_error_handlers
from gateway.http_metrics import HttpMetricsMiddleware
from gateway.http_tracing import HttpTracing
from gateway.openapi import install_openapi
from gateway.query_params import refuse_unknown_query
from gateway.request_body import BodyLimit, BodyRefused, RequestBodyGuard, on_body_refused
from gateway.settings import GatewaySettings
from gateway.status_fanout import StatusFanout
from gateway.status_mirror import StatusMirror
from gateway.status_reads import StatusReads
from gateway.templating import STATIC_DIR
from runtime.auth import Authenticator
from runtime.auth.http import CSRF_HEADER, HttpAuth
from runtime.auth.sessions import SessionCodec
from runtime.logging import get_logger
from runtime.supervision import TaskSupervisor

__all__ = ["create_app"]

API_DEPENDENCIES = [Depends(refuse_unknown_query)]
"""Every ``/api`` route: unknown query parameters are 400, like unknown body fields."""

log = get_logger("gateway")

DESCRIPTION = """HTTP/JSON front of Switchboard (conventions: docs/api-conventions.md). Successes are
`{"success": true, "data": …, "meta": {…}}` (meta: count, page, source, stale, asOf, when there is some);
failures are `{"success": false, "error": {"code": "<gRPC code name>", "message": "…", "details": {…}}}`
with the HTTP status of the canonical gRPC → HTTP mapping."""


def create_app(
    settings: GatewaySettings, *, backends: Backends | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The app; ``tracer_provider`` None means the global one (``runtime.telemetry`` sets it)."""
    backends = backends if backends is not None else Backends(settings.service_addresses(), settings)
    http_auth = _http_auth(settings)

    reads = StatusReads(None, lambda: backends.status_rows, timeout_seconds=settings.rpc_timeout_seconds)
    fanout = StatusFanout(lambda: backends.status)
    tasks = TaskSupervisor()
    """The gateway's long-lived tasks (the status mirror's watch); one that dies fails ``/healthz``."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.auth_migrate_on_start:
            from runtime.auth.migrate import upgrade  # SQLAlchemy/Alembic: not for a config error's exit

            await upgrade(settings.auth_store_url)
        await backends.open()
        mirror: StatusMirror | None = None
        if settings.gateway_status_mirror:
            mirror = StatusMirror(
                lambda: backends.status,
                stale_after_seconds=settings.status_stale_after_seconds,
                freshness_max_age_seconds=settings.gateway_mirror_freshness_max_age_seconds,
                tasks=tasks,
            )
            mirror.start()
        app.state.status_mirror = reads.mirror = mirror
        log.info("gateway started", backends=backends.addresses)
        try:
            yield
        finally:
            tasks.close()  # stopping now: a task ending is no death
            app.state.status_mirror = reads.mirror = None
            if mirror is not None:
                await mirror.stop()
            await fanout.stop()
            await backends.close()
            await http_auth.authenticator.close()
            log.info("gateway stopped")

    app = FastAPI(
        title="Switchboard gateway",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The request spans are HttpTracing's, request metrics Prometheus's (gateway.http_metrics):
        # FastAPI's own OpenTelemetry spans, metrics and logs would be a second copy of each.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_openapi(app)
    app.state.settings = settings
    app.state.backends = backends
    app.state.tasks = tasks
    app.state.auth = http_auth
    app.state.status_mirror = None
    app.state.status_reads = reads
    app.state.status_fanout = fanout
    install_error_handlers(app)
    app.add_exception_handler(BodyRefused, on_body_refused)
    # Added last = outermost: the trace span wraps the metrics and everything below.
    app.add_middleware(AuditMiddleware)
    if settings.gateway_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.gateway_cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", CSRF_HEADER],
        )
    app.add_middleware(
        ClientCaps,
        max_connections_per_client=settings.gateway_max_connections_per_client,
        max_streams_per_client=settings.gateway_max_streams_per_client,
        retry_after_seconds=settings.gateway_retry_after_seconds,
    )
    # Inside the Host check (a refused host reads no body), outside everything that might read one.
    app.add_middleware(
        RequestBodyGuard,
        default=BodyLimit(settings.gateway_max_body_bytes, settings.gateway_body_timeout_seconds),
        by_path={
            routes_media.UPLOAD_PATH: BodyLimit(
                settings.media_max_upload_bytes + routes_media.MULTIPART_OVERHEAD,
                settings.gateway_upload_timeout_seconds,
            )
        },
        idle_seconds=settings.gateway_body_idle_seconds,
    )
    app.add_middleware(BrowserSafety, allowed_hosts=settings.gateway_allowed_hosts)
    app.add_middleware(HttpMetricsMiddleware)
    # One span per request, none per body chunk (an SSE stream would emit one per event).
    app.add_middleware(HttpTracing, excluded_urls="healthz,readyz,metrics,static", tracer_provider=tracer_provider)
    app.include_router(routes_ops.router)
    app.include_router(login.router)
    app.include_router(routes_status.router, dependencies=API_DEPENDENCIES)
    app.include_router(dashboard.router)
    app.include_router(routes_queues.router, dependencies=API_DEPENDENCIES)
    app.include_router(queue_dashboard.router)
    app.include_router(routes_media.router, dependencies=API_DEPENDENCIES)
    app.include_router(media_page.router)
    app.include_router(routes_notify.router, dependencies=API_DEPENDENCIES)
    app.include_router(notify_dashboard.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _http_auth(settings: GatewaySettings) -> HttpAuth:
    secret = settings.auth_session_secret
    bootstrap = settings.auth_bootstrap_token
    if secret is None:
        log.info("AUTH_SESSION_SECRET unset: browser sessions are signed with a per-process secret")
    return HttpAuth(
        Authenticator.from_settings(settings),
        SessionCodec(
            secret.get_secret_value() if secret else secrets.token_urlsafe(32),
            max_age_seconds=settings.auth_session_hours * 3600,
        ),
        bootstrap_token=bootstrap.get_secret_value() if bootstrap else None,
        cookie_secure=settings.gateway_cookie_secure,
    )
