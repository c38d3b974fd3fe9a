"""The notifications admin page under ``/admin/notifications``.

One server-rendered page (``templates/notifications.html``) whose script
(``static/notifications.js``) lists the newest notifications with their delivery states
(``GET /api/notifications``, re-read every two seconds and after each send), sends a test
message on any channel (``POST /api/notifications``, errors shown with the field they name),
subscribes the browser to Web Push for a user (service worker ``static/notifications-sw.js``,
``PushManager.subscribe`` with the VAPID key, ``POST /api/push/subscriptions``; pushes that arrive
show on the page) and, under ``make run``, shows what the local providers received
(``GET /api/notifications-local-sinks``). The providers keep their own records (snake_case keys,
``at`` in epoch seconds, as their tests read them); :func:`local_sinks_json` restates them in the
API's convention (docs/api-conventions.md).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse

from gateway.login import page_context
from gateway.query_params import refuse_unknown_query
from gateway.schemas_notify import LocalSinks
from gateway.settings import GatewaySettings
from gateway.status_json import at_ms
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
    dependencies=[Depends(refuse_unknown_query)],  # an /api route outside the /api routers
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
    return JSONResponse({"success": True, "data": local_sinks_json(response.json())})


def local_sinks_json(log: dict[str, Any]) -> dict[str, Any]:
    """The local providers' ``GET /_log`` (services.notify.local) as :class:`LocalSinks`."""
    return {
        "email": [
            {"to": m["to"], "subject": m["subject"], "text": m["text"], "receivedAt": at_ms(m["at"])}
            for m in log["email"]
        ],
        "telegram": [
            {
                "chatId": str(m["chat_id"]),
                "text": m["text"],
                "messageId": m["message_id"],
                "receivedAt": at_ms(m["at"]),
            }
            for m in log["telegram"]
        ],
        "browser": [
            {
                "subscription": m["subscription"],
                "payload": m["payload"],
                "ttlMs": int(m["ttl"]) * 1000 if str(m.get("ttl") or "").isdigit() else None,
                "receivedAt": at_ms(m["at"]),
            }
            for m in log["browser"]
        ],
        "sms": [
            {
                "sid": m["sid"],
                "to": m["to"],
                "sender": m["from"],
                "body": m["body"],
                "status": m["status"],
                "receivedAt": at_ms(m["at"]),
            }
            for m in log["sms"]
        ],
        "pushServiceUrl": log["pushServiceUrl"],
    }
