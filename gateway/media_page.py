"""The media page under ``/admin/media``: drag-and-drop upload and the recent media, live.

One server-rendered page (``templates/media.html``) whose script (``static/media.js``) uploads
through ``POST /api/admin/media/upload-async``, lists ``/api/admin/media`` and follows
``/api/admin/media/events`` (SSE): a state change re-reads only that media and redraws its card
(thumbnail, variants, state, error). Nothing is polled on a timer.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.login import page_context
from gateway.templating import templates
from runtime.auth import Scope
from runtime.auth.http import requires

__all__ = ["router"]

router = APIRouter(tags=["dashboard"], dependencies=[requires(Scope.READ)])


@router.get("/admin/media", response_class=HTMLResponse, summary="Media: upload, recent uploads, live states")
async def media_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "media.html", page_context(request))
