"""Type names for grpc's generic classes (types-grpcio), for annotations only.

grpc's runtime classes are not subscriptable, so these aliases are strings that only the type
checker reads; servicers and interceptors use them instead of spelling the parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import grpc
    import grpc.aio

ServicerContext: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
"""The context of a grpc.aio servicer method (abort, metadata, peer, auth context)."""

MethodHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
"""One method's handler as a server interceptor sees and wraps it."""

Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[MethodHandler | None]]"
"""What a grpc.aio server interceptor calls for the handler beneath it (None: no such method)."""
