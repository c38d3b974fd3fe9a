"""What a servicer left on its call's context, read the same way by every server layer.

The logging/metrics layer (:mod:`runtime.interceptors`), the auth layer and the span layer
(:mod:`runtime.telemetry`) each read the status a call ended with and its details; grpc.aio may
raise from these getters once the call is gone, and some versions hand back the raw integer.
"""

from __future__ import annotations

import grpc
import grpc.aio

__all__ = ["details_of", "status_code_of"]

_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def status_code_of(
    context: grpc.aio.ServicerContext, *, unset: grpc.StatusCode = grpc.StatusCode.OK
) -> grpc.StatusCode:
    """The status the servicer set on ``context``; ``unset`` when it set none (UNKNOWN when
    the context cannot say)."""
    try:
        code = context.code()
    except Exception:
        return grpc.StatusCode.UNKNOWN
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # some grpc versions hand back the raw integer
        return _CODES_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)
    return unset


def details_of(context: grpc.aio.ServicerContext) -> str | None:
    """The details the servicer set on ``context`` as text; None when it set none or cannot say."""
    try:
        details = context.details()
    except Exception:
        return None
    if isinstance(details, bytes):
        return details.decode("utf-8", "replace")
    return details if isinstance(details, str) else None
