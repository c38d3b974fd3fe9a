"""The live operator dashboard: one server-rendered page whose script follows the SSE stream.

Nothing is polled: the page opens ``/api/queue-status/stream`` (EventSource), renders the
first ``snapshot`` event and applies each ``changes`` event. ``?wall=1`` switches to large type
for wall screens; ``?queue=sales&queue=support`` limits the page to those queues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

__all__ = ["STATIC_DIR", "router"]

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
async def root(request: Request) -> RedirectResponse:
    query = request.url.query
    return RedirectResponse(f"/dashboard?{query}" if query else "/dashboard", status_code=307)


@router.get("/dashboard", response_class=HTMLResponse, summary="Live operator dashboard (SSE)")
async def dashboard(
    request: Request,
    wall: Annotated[bool, Query(description="Large type for wall screens.")] = False,
    queue: Annotated[list[str] | None, Query(description="Only these queues.")] = None,
) -> HTMLResponse:
    return templates.TemplateResponse(request, "dashboard.html", {"wall": wall, "queues": queue or []})
