"""The queue dashboard under ``/admin/queues``: Bull Board's features on the queue admin API.

One server-rendered page (``templates/queues.html``) whose script (``static/queues.js``) reads
``/api/queues…`` and follows ``/api/queues/events`` (SSE): on a job event it re-reads only the
affected queue's counts and, when that queue is on screen, its visible page of jobs (progress
events patch the row in place). Nothing is polled on a timer and the page never reloads.
``/admin/queues/{queue}`` opens on that queue; ``?state=failed`` on that tab. The page needs
``read``; its buttons call routes that need ``operate`` or ``admin`` and send the session's
CSRF token (``X-CSRF-Token``, from the page's ``csrf-token`` meta tag).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from gateway.login import page_context
from gateway.routes_queues import JobStateName
from gateway.templating import templates
from runtime.auth import Scope
from runtime.auth.http import requires

__all__ = ["router"]

router = APIRouter(tags=["dashboard"], dependencies=[requires(Scope.READ)])

StateParam = Annotated[JobStateName, Query(description="The tab to open.")]


def _page(request: Request, queue: str, state: JobStateName) -> HTMLResponse:
    context = {"queue": queue, "state": state.value, "states": [s.value for s in JobStateName], **page_context(request)}
    return templates.TemplateResponse(request, "queues.html", context)


@router.get("/admin/queues", response_class=HTMLResponse, summary="Live queue dashboard (SSE)")
async def queues_page(request: Request, state: StateParam = JobStateName.waiting) -> HTMLResponse:
    return _page(request, "", state)


@router.get("/admin/queues/{queue}", response_class=HTMLResponse, summary="Live queue dashboard on one queue")
async def queue_page(request: Request, queue: str, state: StateParam = JobStateName.waiting) -> HTMLResponse:
    return _page(request, queue, state)
