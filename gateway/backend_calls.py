"""How a route calls a backend: the deadline every call carries, and field names in errors.

A backend names the offending field of an INVALID_ARGUMENT by its proto name (``page_size``,
``data_json.duration_ms``); the gateway's caller sent JSON (``pageSize``, ``data.duration_ms``),
so :func:`naming_json_field` rewrites the name before the error reaches the error handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TypeVar

import grpc
import grpc.aio
from fastapi import Request

from gateway.settings import GatewaySettings
from runtime.errors import InvalidArgument
from runtime.grpc_errors import details_from_rpc_error

__all__ = ["naming_json_field", "rpc_timeout"]

T = TypeVar("T")


def rpc_timeout(request: Request) -> float:
    """The deadline, in seconds, of one backend call made for ``request``."""
    settings: GatewaySettings = request.app.state.settings
    return settings.rpc_timeout_seconds


async def naming_json_field(call: Awaitable[T], json_field: Mapping[str, str]) -> T:
    """Await a backend call; an INVALID_ARGUMENT names the JSON field the caller sent.

    The first segment of the proto field path is renamed through ``json_field`` (unknown
    names stay as they are); the backend's other error details are kept. Any other error,
    and an INVALID_ARGUMENT that names no field, is raised unchanged.
    """
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        details = details_from_rpc_error(error)
        field = str(details.get("field", ""))
        if not field:
            raise
        problem = (error.details() or "").removeprefix(f"{field}: ")
        head, dot, tail = field.partition(".")
        extra = {k: v for k, v in details.items() if k not in ("field", "fieldViolations")}
        raise InvalidArgument(f"{json_field.get(head, head)}{dot}{tail}", problem, details=extra) from None
