"""The live operator dashboard: one server-rendered page whose script follows the SSE stream.

Nothing is polled: the page opens ``/api/queue-status/stream`` (EventSource), renders the
first ``snapshot`` event and applies each ``changes`` event. ``?wall=1`` switches to large type
for wall screens; ``?queue=sales&queue=support`` limits the page to those queues. The page needs
``read``; without a session it answers 401 with the login form (:mod:`gateway.login`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.login import page_context
from gateway.templating import STATIC_DIR, templates
from runtime.auth import Scope
from runtime.auth.http import public, requires

__all__ = ["STATIC_DIR", "router"]

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False, dependencies=[public()])
async def root(request: Request) -> RedirectResponse:
    query = request.url.query
    return RedirectResponse(f"/dashboard?{query}" if query else "/dashboard", status_code=307)


@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    summary="Live operator dashboard (SSE)",
    dependencies=[requires(Scope.READ)],
)
async def dashboard(
    request: Request,
    wall: Annotated[bool, Query(description="Large type for wall screens.")] = False,
    queue: Annotated[list[str] | None, Query(description="Only these queues.")] = None,
) -> HTMLResponse:
    context = {"wall": wall, "queues": queue or [], **page_context(request)}
    return templates.TemplateResponse(request, "dashboard.html", context)
