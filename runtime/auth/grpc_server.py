"""The gRPC server side of authentication: a grpc.aio interceptor fed by method → scope declarations.

Each service declares, where it is registered, the scope of every method
(:func:`runtime.auth.scopes.method_scopes` checks the declaration is complete)::

    GrpcService(..., scopes=method_scopes(SERVICE_DESCRIPTOR, {"ListQueues": Scope.READ, ...}))

:class:`AuthInterceptor` then refuses, before the servicer runs, any call that is not
authorized: no or unknown credential → UNAUTHENTICATED, a credential without the scope →
PERMISSION_DENIED, a method nobody declared → PERMISSION_DENIED (fail closed). Each refusal is
logged as ``auth refused`` with the method, the principal (when known) and the reason; the
credential itself is never logged. grpc.health.v1 and server reflection stay open: probes
must work without secrets, and reflection only describes the public contracts of protos/,
which other teams compile anyway (it exposes no data and calls nothing).

The credential is ``authorization: Bearer <token>`` metadata; with mTLS (``GRPC_TLS_*``) a
call without one is the internal identity of its verified client certificate.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import grpc
import grpc.aio

from runtime.auth.authenticator import Authenticator
from runtime.auth.scopes import Principal, Scope, granted_by
from runtime.errors import PermissionDenied, SwitchboardError, grpc_status_for
from runtime.grpc_types import Continuation, MethodHandler
from runtime.logging import get_logger

__all__ = ["OPEN_SERVICES", "AuthInterceptor", "bearer_token", "caller", "check_declared"]

_CALLER: ContextVar[Principal | None] = ContextVar("grpc_caller", default=None)


def caller() -> Principal | None:
    """Who made the RPC being served (set by the guard for the call's own task), or None
    outside a guarded call: what a servicer asks when an answer depends on the caller's scope."""
    return _CALLER.get()


log = get_logger("runtime.auth")

OPEN_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)
"""Services every caller may use without a credential (see the module docstring for why)."""
_OPEN_METHOD_PREFIXES = tuple(f"/{service}/" for service in OPEN_SERVICES)


def bearer_token(metadata: Any) -> str | None:
    """The token of the ``authorization: Bearer …`` entry of gRPC metadata, if any."""
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = (value.decode() if isinstance(value, bytes) else value).partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _certificate_principal(context: grpc.aio.ServicerContext) -> Principal | None:
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    names = auth.get("x509_common_name") or auth.get("x509_subject_alternative_name")
    if not names:
        return None  # TLS without a client certificate
    return Principal(f"cert:{next(iter(names)).decode(errors='replace')}", "certificate", granted_by(Scope.INTERNAL))


def check_declared(service_names: list[str], scopes: Mapping[str, Scope]) -> None:
    """Raise ValueError unless every method of every named service has a declared scope."""
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    missing: list[str] = []
    for name in service_names:
        try:
            descriptor = pool.FindServiceByName(name)
        except KeyError:
            continue  # no compiled contract to enumerate: undeclared calls are refused when made
        missing += [f"/{name}/{m.name}" for m in descriptor.methods if f"/{name}/{m.name}" not in scopes]
    if missing:
        raise ValueError(f"methods without a declared scope: {', '.join(missing)}")


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator, scopes: Mapping[str, Scope]) -> None:
        self.authenticator = authenticator
        self.scopes = dict(scopes)
        self._wrapped: dict[str, tuple[MethodHandler, MethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_OPEN_METHOD_PREFIXES):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(handler, self._guard(method))
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _guard(self, method: str) -> Callable[[grpc.aio.ServicerContext], Awaitable[None]]:
        needed = self.scopes.get(method)
        authenticator = self.authenticator

        async def guard(context: grpc.aio.ServicerContext) -> None:
            principal: Principal | None = None
            try:
                token = bearer_token(context.invocation_metadata())
                if token is None:
                    principal = _certificate_principal(context)
                if principal is None:
                    principal = await authenticator.authenticate(token)
                if needed is None:
                    raise PermissionDenied(f"{method} has no declared scope")
                if not principal.allows(needed):
                    raise PermissionDenied(f"{method} needs scope {needed.value}")
                _CALLER.set(principal)
            except SwitchboardError as error:
                log.warning(
                    "auth refused",
                    method=method,
                    principal=principal.name if principal else None,
                    reason=error.message,
                    peer=context.peer(),
                )
                await context.abort(grpc_status_for(error), error.message)

        return guard


def _wrap(handler: grpc.RpcMethodHandler, guard: Callable[[grpc.aio.ServicerContext], Awaitable[None]]) -> Any:
    kwargs = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}

    def unary_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await guard(context)
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

        return guarded

    def stream_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await guard(context)
            result = behavior(request, context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            elif inspect.isawaitable(result):
                await result  # the servicer writes with context.write()
            elif result is not None:
                for item in result:
                    yield item

        return guarded

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **kwargs)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **kwargs)
    return handler
