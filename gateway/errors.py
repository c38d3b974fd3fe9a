"""Every error the gateway answers, rendered one way.

The body is always ``{"success": false, "error": {"code", "message", "details"}}`` where
``code`` is the gRPC status name (``INVALID_ARGUMENT``, ``NOT_FOUND`` …) and the HTTP status
comes from ``runtime.errors.HTTP_STATUS`` — the single gRPC → HTTP table of the project:

- a backend's ``grpc.aio.AioRpcError`` keeps the backend's code, message and rich-error
  details (``runtime.grpc_errors.details_from_rpc_error``);
- a ``runtime.errors.SwitchboardError`` raised by the gateway itself maps through
  ``grpc_status_for`` (refined by ``HTTP_STATUS_BY_REASON``: 413, 415); an ``Unauthenticated``
  (401) adds ``WWW-Authenticate: Bearer``, and a browser asking for a page gets the login form
  with that 401 instead of JSON;
- a request that fails validation is INVALID_ARGUMENT (400) naming the field;
- an unknown path or method keeps its HTTP status with the nearest gRPC code.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.login import login_page
from gateway.responses import FastJSONResponse
from runtime.errors import SwitchboardError, Unauthenticated, grpc_status_for, http_status_for
from runtime.grpc_errors import details_from_rpc_error
from runtime.logging import get_logger

__all__ = ["error_body", "error_response", "install_error_handlers", "validation_details"]

log = get_logger("gateway.errors")

# HTTP statuses the framework raises itself (unknown route, wrong method) → nearest gRPC code.
_HTTP_TO_GRPC: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.ABORTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def error_body(code: grpc.StatusCode, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"success": False, "error": {"code": code.name, "message": message, "details": details or {}}}


def error_response(
    code: grpc.StatusCode,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    http_status: int | None = None,
) -> FastJSONResponse:
    if http_status is None:
        reason = (details or {}).get("reason")
        http_status = http_status_for(code, reason if isinstance(reason, str) else None)
    return FastJSONResponse(error_body(code, message, details), status_code=http_status)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("query", "paused") → "paused"; ("body", "items", 0, "name") → "items.0.name"
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in {"query", "path", "body", "header"} else []
    return ".".join(parts) if parts else ".".join(str(p) for p in loc)


def _violation(e: dict[str, Any]) -> dict[str, Any]:
    loc = tuple(e["loc"])
    if e.get("type") == "json_invalid":  # loc is ("body", <character offset>), not a field
        problem = (e.get("ctx") or {}).get("error", "JSON decode error")
        return {
            "field": "body",
            "location": "body",
            "description": f"is not valid JSON: {problem} at character {loc[-1]}",
        }
    return {"field": _field_name(loc), "location": str(loc[0]), "description": e["msg"]}


def validation_details(error: RequestValidationError) -> tuple[str, dict[str, Any]]:
    """The message and details of a 400 for a request that failed validation."""
    violations = [_violation(e) for e in error.errors() if e.get("loc")]
    if not violations:
        return "invalid request", {}
    first = violations[0]
    return f"{first['field']}: {first['description']}", {"field": first["field"], "fieldViolations": violations}


async def _on_rpc_error(_: Request, exc: Exception) -> FastJSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    code = exc.code()
    details = details_from_rpc_error(exc)
    if code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}:
        log.warning("backend call failed", code=code.name, message=exc.details())
    return error_response(code, exc.details() or code.name.lower().replace("_", " "), details)


async def _on_switchboard_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SwitchboardError)
    if isinstance(exc, Unauthenticated):
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return login_page(request)  # a browser on a page: 401 with the login form in place
        response = error_response(grpc_status_for(exc), exc.message, exc.details)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    status = http_status_for(grpc_status_for(exc), type(exc).__name__)
    return error_response(grpc_status_for(exc), exc.message, exc.details, http_status=status)


async def _on_validation_error(_: Request, exc: Exception) -> FastJSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, details = validation_details(exc)
    return error_response(grpc.StatusCode.INVALID_ARGUMENT, message, details)


async def _on_http_exception(_: Request, exc: Exception) -> FastJSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_TO_GRPC.get(exc.status_code, grpc.StatusCode.UNKNOWN)
    response = error_response(code, str(exc.detail), http_status=exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_unexpected(_: Request, exc: Exception) -> FastJSONResponse:
    log.error("request failed", exc_info=exc)
    return error_response(grpc.StatusCode.INTERNAL, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(grpc.aio.AioRpcError, _on_rpc_error)
    app.add_exception_handler(SwitchboardError, _on_switchboard_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
