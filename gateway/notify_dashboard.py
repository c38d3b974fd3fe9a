"""The notifications admin page under ``/admin/notifications``.

One server-rendered page (``templates/notifications.html``) whose script
(``static/notifications.js``) lists the newest notifications with their delivery states
(``GET /api/notifications``, re-read every two seconds and after each send), sends a test
message on any channel (``POST /api/notifications``, errors shown with the field they name),
subscribes the browser to Web Push for a user (service worker ``static/notifications-sw.js``,
``PushManager.subscribe`` with the VAPID key, ``POST /api/push/subscriptions``; pushes that arrive
show on the page) and, under ``make run``, shows what the local providers received
(``GET /api/notifications-local-sinks``).
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from gateway.login import page_context
from gateway.schemas_notify import LocalSinks
from gateway.settings import GatewaySettings
from gateway.templating import templates
from runtime.auth import Scope
from runtime.auth.http import requires
from runtime.errors import FailedPrecondition, Unavailable

__all__ = ["router"]

router = APIRouter(tags=["dashboard"], dependencies=[requires(Scope.READ)])
CHANNELS = ("email", "telegram", "browser", "database", "sms")
TEMPLATES = ("welcome", "reminder", "operator_alert")


@router.get("/admin/notifications", response_class=HTMLResponse, summary="Notifications admin page")
async def notifications_page(request: Request) -> HTMLResponse:
    context = {"channels": CHANNELS, "templates": TEMPLATES, **page_context(request)}
    return templates.TemplateResponse(request, "notifications.html", context)


@router.get(
    "/api/notifications-local-sinks",
    response_model=LocalSinks,
    summary="What the local providers of `make run` received",
)
async def local_sinks(request: Request) -> JSONResponse:
    settings: GatewaySettings = request.app.state.settings
    if not settings.notify_sinks_url:
        raise FailedPrecondition("no local providers run here (NOTIFY_SINKS_URL is not set)")
    try:
        async with httpx.AsyncClient(timeout=settings.rpc_timeout_seconds) as client:
            response = await client.get(f"{settings.notify_sinks_url.rstrip('/')}/_log")
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(f"local providers unreachable: {exc}") from exc
    return JSONResponse({"success": True, "data": response.json()})
