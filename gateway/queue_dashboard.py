"""The queue dashboard under ``/admin/queues``: Bull Board's features on the queue admin API.

One server-rendered page (``templates/queues.html``) whose script (``static/queues.js``) reads
``/api/queues…`` and follows ``/api/queues/events`` (SSE): on a job event it re-reads only the
affected queue's counts and, when that queue is on screen, its visible page of jobs (progress
events patch the row in place). Nothing is polled on a timer and the page never reloads.
``/admin/queues/{queue}`` opens on that queue; ``?state=failed`` on that tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gateway.routes_queues import JobStateName

__all__ = ["router"]

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

router = APIRouter(tags=["dashboard"])

StateParam = Annotated[JobStateName, Query(description="The tab to open.")]


def _page(request: Request, queue: str, state: JobStateName) -> HTMLResponse:
    context = {"queue": queue, "state": state.value, "states": [s.value for s in JobStateName]}
    return templates.TemplateResponse(request, "queues.html", context)


@router.get("/admin/queues", response_class=HTMLResponse, summary="Live queue dashboard (SSE)")
async def queues_page(request: Request, state: StateParam = JobStateName.waiting) -> HTMLResponse:
    return _page(request, "", state)


@router.get("/admin/queues/{queue}", response_class=HTMLResponse, summary="Live queue dashboard on one queue")
async def queue_page(request: Request, queue: str, state: StateParam = JobStateName.waiting) -> HTMLResponse:
    return _page(request, queue, state)
