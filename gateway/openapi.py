"""The published OpenAPI document says what the API answers, not FastAPI's defaults.

FastAPI documents every route as ``200`` with an empty schema and ``422`` with its own
validation shape, while the gateway answers the envelope of docs/api-conventions.md and the
statuses of the canonical gRPC → HTTP table. :func:`install_openapi` rewrites each ``/api``
operation once, when the document is first asked for:

- ``2xx``: the success envelope ``{success: true, data, meta?}`` with the route's data model
  (its ``response_model``, from ``gateway.schemas_*``) as ``data``; a list answer requires
  ``meta.count``; a route answering bytes (a media variant) keeps its own content;
- the error envelope for every status the route can answer: 400 (bad input, unknown query
  parameters), 401, 403, 404 (a name in the path, or a stream asked to follow an unknown queue),
  409 (an enqueue whose job id exists), 413 (a body over its limit), 429 (caps), 503 (a backend
  down); FastAPI's 422 is gone (validation failures are 400);
- Server-Sent Event routes list their events (``x-sse-events``: event name -> ``description``
  and the JSON Schema of its data, whose models join ``components.schemas``).

Outside ``/api`` (pages, probes) the routes declare their own responses; only FastAPI's 422
becomes the 400 the gateway answers, and its validation schemas leave the document.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.api_schema import Ready, sse_schema
from gateway.schemas_media import MediaEventData
from gateway.schemas_notify import InAppMessage
from gateway.schemas_queues import JobEventData
from gateway.schemas_status import ChangeSetEvent, SnapshotEvent

__all__ = ["ERROR_ENVELOPE", "SUCCESS_ENVELOPE", "install_openapi"]

ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error"],
    "additionalProperties": False,
    "properties": {
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Z][A-Z_]*$", "description": "gRPC status name."},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "description": "One vocabulary (docs/api-conventions.md): reason, field, fieldViolations, "
                    "queue, memberId, jobId, mediaId, limit …",
                    "properties": {
                        "reason": {"type": "string"},
                        "field": {"type": "string"},
                        "fieldViolations": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["field", "description"],
                                "properties": {"field": {"type": "string"}, "description": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
}
META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "page": {
            "type": "object",
            "required": ["page", "pageSize", "total"],
            "properties": {"page": {"type": "integer"}, "pageSize": {"type": "integer"}, "total": {"type": "integer"}},
        },
        "source": {"enum": ["redis", "database", "unknown"]},
        "stale": {"type": "boolean"},
        "asOf": {"type": ["integer", "null"], "description": "Epoch ms of the answer."},
        "lastIngestAt": {"type": ["integer", "null"], "description": "Epoch ms; null when never."},
    },
}
SUCCESS_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["success", "data"],
    "additionalProperties": False,
    "properties": {"success": {"const": True}, "data": {}, "meta": {"$ref": "#/components/schemas/Meta"}},
}
ERROR_STATUSES = {
    "400": "Bad input (INVALID_ARGUMENT, FAILED_PRECONDITION), naming the field; unknown query parameters too.",
    "401": "No credential, or one nobody issued (UNAUTHENTICATED).",
    "403": "The credential lacks the route's scope (PERMISSION_DENIED).",
    "429": "A per-client cap or a rate limit (RESOURCE_EXHAUSTED); Retry-After says when to come back.",
    "503": "A backend is unreachable (UNAVAILABLE).",
}
ERROR_EVENT = ("The error envelope; the stream ends.", None)
SSE_EVENTS: dict[str, dict[str, tuple[str, Any]]] = {
    "/api/queue-status/stream": {
        "snapshot": ("The whole state with its freshness; first, and again after a skip.", SnapshotEvent),
        "changes": ("A change set: apply in revision order (a gap means reconnect).", ChangeSetEvent),
        "error": ERROR_EVENT,
    },
    "/api/queues/events": {
        "ready": ("Subscribed: nothing after it is missed (the moment to (re)load counts).", Ready),
        "job": ("One queue event: detail {result} on completed, {progress} on progress.", JobEventData),
        "error": ERROR_EVENT,
    },
    "/api/admin/media/events": {
        "ready": ("Subscribed: nothing after it is missed.", Ready),
        "media": ("A media changed state.", MediaEventData),
        "error": ERROR_EVENT,
    },
    "/api/users/{user_id}/inbox/stream": {
        "ready": ("Subscribed: nothing after it is missed.", Ready),
        "message": ("A new in-app message of the user.", InAppMessage),
        "error": ERROR_EVENT,
    },
}
"""Each SSE route's events: name -> (description, the data's model; None: the error envelope)."""


def _sse_events(path: str, schemas: dict[str, Any]) -> dict[str, Any]:
    events: dict[str, Any] = {}
    for name, (description, model) in SSE_EVENTS[path].items():
        if model is None:
            schema: dict[str, Any] = {"$ref": "#/components/schemas/ErrorEnvelope"}
        else:
            schema, defs = sse_schema(model)
            schemas.update(defs)
        events[name] = {"description": description, "schema": schema}
    return events


def _errors_for(path: str, method: str, operation: dict[str, Any]) -> dict[str, str]:
    statuses = dict(ERROR_STATUSES)
    if "{" in path or path in SSE_EVENTS:
        statuses["404"] = "A name in the path (or a queue to follow) that does not exist (NOT_FOUND)."
    if method in {"post", "put", "delete"}:
        statuses["409"] = "Already exists, or changed meanwhile (ALREADY_EXISTS, ABORTED)."
    if "requestBody" in operation:
        statuses["413"] = "The body (or job data) is over its limit (RESOURCE_EXHAUSTED, reason PayloadTooLarge)."
    return statuses


def _rewrite(path: str, method: str, operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    for status, response in responses.items():
        if not status.startswith("2"):
            continue
        content = response.setdefault("content", {})
        if path in SSE_EVENTS:
            content.pop("application/json", None)
            content["text/event-stream"] = {"schema": {"type": "string"}}
            response["x-sse-events"] = _sse_events(path, schemas)
            continue
        if content and "application/json" not in content:
            continue  # bytes (a media variant): the route's own content
        declared = content.get("application/json", {}).get("schema") or {}
        envelope = {"$ref": "#/components/schemas/SuccessEnvelope"}
        shape: dict[str, Any] = {"properties": {"data": declared}}
        if declared.get("type") == "array":
            shape |= {"required": ["meta"], "properties": {"data": declared, "meta": {"required": ["count"]}}}
        content["application/json"] = {"schema": {"allOf": [envelope, shape]} if declared else envelope}
    for status, description in _errors_for(path, method, operation).items():
        responses[status] = _error_response(description)


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


def _drop_unreferenced(spec: dict[str, Any], names: tuple[str, ...]) -> None:
    schemas = spec["components"]["schemas"]
    for name in names:
        schema = schemas.pop(name, None)
        if schema is not None and f'"#/components/schemas/{name}"' in json.dumps(spec):
            schemas[name] = schema  # still referred to: keep it


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the rewritten document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas |= {"ErrorEnvelope": ERROR_ENVELOPE, "SuccessEnvelope": SUCCESS_ENVELOPE, "Meta": META}
            for path, operations in spec.get("paths", {}).items():
                for method, operation in operations.items():
                    if path.startswith("/api/"):
                        _rewrite(path, method, operation, schemas)
                    elif operation.get("responses", {}).pop("422", None) is not None:  # a page's bad query
                        operation["responses"]["400"] = _error_response(ERROR_STATUSES["400"])
            _drop_unreferenced(spec, ("HTTPValidationError", "ValidationError"))  # 422's shape: never answered
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
