"""Operational endpoints: liveness, readiness, every backend's grpc.health.v1, Prometheus.

``/healthz`` is liveness: 200 while the process answers, 503 for good once one of its supervised
background tasks (the status mirror's watch, :mod:`runtime.supervision`) died.

``/readyz`` is this gateway's own readiness (started, its channels open, not draining): a
backend that is down answers its own routes with 503 but does not take every gateway pod out of
its Service. ``/readyz/backends`` is the suite-wide view (200 only when every backend reports
SERVING): what ``make run`` waits for and what an operator looks at.

Open to anyone on purpose (probes and scrapers carry no credential): they answer liveness, which
backends serve, and counters; no state of the contact center.
"""

from __future__ import annotations

import grpc
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from gateway.backends import Backends
from gateway.errors import error_response
from gateway.responses import FastJSONResponse
from gateway.schemas_ops import ERROR_CONTENT, BackendsReady, Live, Ready
from gateway.settings import GatewaySettings
from runtime.auth.http import public
from runtime.supervision import TaskSupervisor

__all__ = ["router"]

router = APIRouter(tags=["operations"], dependencies=[public()])


@router.get(
    "/healthz",
    summary="Liveness: the process answers and none of its background tasks died",
    response_model=Live,
    responses={503: {"description": "A background task died: restart the pod", "content": ERROR_CONTENT}},
)
async def healthz(request: Request) -> FastJSONResponse:
    tasks: TaskSupervisor = request.app.state.tasks
    if tasks.failures:
        died = sorted(tasks.failures)
        return error_response(
            grpc.StatusCode.UNAVAILABLE, f"not live: background task died: {', '.join(died)}", {"died": died}
        )
    return FastJSONResponse({"success": True, "data": {"status": "ok"}})


@router.get(
    "/readyz",
    summary="Readiness: this gateway is started, its backend channels are open and it is not draining",
    response_model=Ready,
    responses={503: {"description": "Starting or stopping", "content": ERROR_CONTENT}},
)
async def readyz(request: Request) -> FastJSONResponse:
    backends: Backends = request.app.state.backends
    if not backends.is_open:
        return error_response(grpc.StatusCode.UNAVAILABLE, "not ready: starting or stopping", {})
    return FastJSONResponse({"success": True, "data": {"ready": True}})


@router.get(
    "/readyz/backends",
    summary="Suite readiness: 200 only when every backend reports SERVING on grpc.health.v1",
    response_model=BackendsReady,
    responses={
        503: {
            "description": "Some backend is not SERVING; error.details.notServing names them",
            "content": ERROR_CONTENT,
        }
    },
)
async def readyz_backends(request: Request) -> FastJSONResponse:
    backends: Backends = request.app.state.backends
    settings: GatewaySettings = request.app.state.settings
    results = await backends.readiness(settings.readiness_timeout_seconds)
    report = {r.name: {"address": r.address, "serving": r.serving, "status": r.reason} for r in results}
    not_serving = [r.name for r in results if not r.serving]
    if not_serving:
        return error_response(
            grpc.StatusCode.UNAVAILABLE,
            f"not ready: {', '.join(not_serving)} not serving",
            {"notServing": not_serving, "backends": report},
        )
    return FastJSONResponse({"success": True, "data": {"ready": True, "backends": report}})


@router.get(
    "/metrics",
    summary="Prometheus exposition",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
