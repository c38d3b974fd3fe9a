"""How a :mod:`runtime.errors` exception travels in a gRPC status, and how a client reads it back.

The server side (the error interceptor of ``runtime.grpc_server``) turns an exception into
``(code, message, trailing_metadata)``: the code from ``runtime.errors.grpc_status_for``, the
message as status details, and a ``google.rpc.Status`` in ``grpc-status-details-bin`` (the
standard rich-error trailer) holding an ``ErrorInfo`` (reason = error class, metadata = the
error's ``details`` as strings) and, for ``InvalidArgument``, a ``BadRequest`` naming the field.

The client side (gateway, other services) calls :func:`details_from_rpc_error` to get a plain
dict such as ``{"reason": "InvalidArgument", "field": "queue"}`` for its JSON error body.

One vocabulary for every service's details (docs/api-conventions.md): keys are lowerCamelCase
(as Google's AIP-193 asks of ErrorInfo metadata), and a thing is named the same everywhere:
``queue``, ``memberId``, ``jobId``, ``mediaId``, ``field`` (the request field at fault),
``fieldViolations`` (BadRequest), ``reason`` (the error class).
"""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from runtime.errors import InvalidArgument, SwitchboardError, grpc_status_for

__all__ = ["DETAILS_KEY", "details_from_rpc_error", "details_from_trailers", "grpc_error_for"]

DETAILS_KEY = "grpc-status-details-bin"
DOMAIN = "switchboard"
_UNSAFE = re.compile(r"[^\x20-\x7e]")


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def grpc_error_for(error: SwitchboardError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """Status code, details text and rich-error trailer for a deliberate error."""
    code = grpc_status_for(error)
    # Status details travel as an HTTP/2 header: keep them printable ASCII.
    message = _UNSAFE.sub("?", error.message)
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(
        reason=type(error).__name__,
        domain=DOMAIN,
        metadata={str(k): _as_text(v) for k, v in error.details.items()},
    )
    packed = any_pb2.Any()
    packed.Pack(info)
    status.details.append(packed)
    if isinstance(error, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.problem)]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        status.details.append(packed)
    return code, message, ((DETAILS_KEY, status.SerializeToString()),)


def details_from_trailers(trailers: Any) -> dict[str, Any]:
    """Decode the rich-error trailer from trailing metadata; ``{}`` when there is none."""
    raw: bytes | None = None
    for key, value in trailers or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            raw = value
    if raw is None:
        return {}
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except Exception:
        return {}
    details: dict[str, Any] = {}
    for packed in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        if packed.Unpack(info):
            details["reason"] = info.reason
            details.update(info.metadata)
        elif packed.Unpack(bad_request):
            details["fieldViolations"] = [
                {"field": v.field, "description": v.description} for v in bad_request.field_violations
            ]
    return details


def details_from_rpc_error(error: grpc.RpcError) -> dict[str, Any]:
    """The details dict a Switchboard server attached to a failed call (``{}`` if none)."""
    trailing = getattr(error, "trailing_metadata", None)
    if trailing is None:
        return {}
    return details_from_trailers(trailing())
