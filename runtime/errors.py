"""Every error Switchboard raises on purpose, and how each one crosses the wire.

Hierarchy (catch the most specific you can handle)::

    SwitchboardError                 base; never raised itself
    ├── InvalidArgument              caller sent something wrong; ``field`` names it
    │   └── UnsupportedMediaType     an upload's bytes are of a type the service does not take
    ├── Unauthenticated              no credential, or one nobody issued (revoked, expired, forged)
    ├── NotFound                     the thing asked for does not exist
    ├── AlreadyExists                a create/enqueue collided with an existing id
    ├── FailedPrecondition           the request is valid but the system is not in a state to do it
    ├── ResourceExhausted            a limit (rate, size, quota) was hit
    │   └── PayloadTooLarge          an upload passed its size (or declared pixel) limit
    ├── RequestTimeout               the caller did not send its request in time (slow body)
    ├── Unavailable                  a dependency (Redis, DB, S3, SMTP, Asterisk) cannot be reached now
    │   └── TransientError           a retryable failure of a single operation
    ├── PermissionDenied             the caller may not do this (a bad signature, a missing scope)
    ├── PermanentError               an operation failed in a way retrying cannot fix
    └── Unimplemented                a capability that has not landed yet

``GRPC_STATUS`` maps each class to its gRPC status code; ``HTTP_STATUS`` is the canonical
google.rpc.Code → HTTP mapping (the one grpc-gateway uses). Servicers and the gateway both
use these two tables and nothing else, plus ``HTTP_STATUS_BY_REASON``: the few errors whose HTTP
status is more precise than their gRPC code's (415, 413, 408), recognised by the error class name the
rich-error trailer carries as its ``reason``.
"""

from __future__ import annotations

from typing import Any

import grpc


class SwitchboardError(Exception):
    """Base of every deliberate Switchboard error."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class InvalidArgument(SwitchboardError):
    """The caller sent a bad value; ``field`` names the offending argument."""

    def __init__(self, field: str, problem: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{field}: {problem}", details={"field": field, **(details or {})})
        self.field = field
        self.problem = problem


class UnsupportedMediaType(InvalidArgument):
    """The bytes sent are of a type the service does not accept (HTTP 415)."""


class Unauthenticated(SwitchboardError):
    """The call carries no credential we accept; the message says why, never the credential."""


class NotFound(SwitchboardError):
    pass


class AlreadyExists(SwitchboardError):
    pass


class FailedPrecondition(SwitchboardError):
    pass


class ResourceExhausted(SwitchboardError):
    pass


class PayloadTooLarge(ResourceExhausted):
    """An upload is over its size limit, or declares more pixels than allowed (HTTP 413)."""


class RequestTimeout(SwitchboardError):
    """The caller stopped sending its request before it was complete (HTTP 408)."""


class Unavailable(SwitchboardError):
    pass


class TransientError(Unavailable):
    """A single operation failed in a way that may succeed if retried."""


class PermissionDenied(SwitchboardError):
    pass


class PermanentError(SwitchboardError):
    """Retrying cannot help (bad recipient, corrupt image, rejected credentials)."""


class Unimplemented(SwitchboardError):
    pass


GRPC_STATUS: dict[type[SwitchboardError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RequestTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    TransientError: grpc.StatusCode.UNAVAILABLE,
    PermanentError: grpc.StatusCode.FAILED_PRECONDITION,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
}

# google.rpc.Code -> HTTP, as documented in google/rpc/code.proto.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


HTTP_STATUS_BY_REASON: dict[str, int] = {
    UnsupportedMediaType.__name__: 415,
    PayloadTooLarge.__name__: 413,
    RequestTimeout.__name__: 408,
}


def grpc_status_for(error: BaseException) -> grpc.StatusCode:
    """The gRPC status for any exception: the nearest mapped class, else INTERNAL."""
    for cls in type(error).__mro__:
        code = GRPC_STATUS.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def http_status_for(code: grpc.StatusCode, reason: str | None = None) -> int:
    """The HTTP status for a gRPC code; ``reason`` (an error class name) may refine it."""
    if reason is not None and reason in HTTP_STATUS_BY_REASON:
        return HTTP_STATUS_BY_REASON[reason]
    return HTTP_STATUS.get(code, 500)
