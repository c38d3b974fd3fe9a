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

Calls of ``operate``, ``admin`` and ``internal`` methods made with a person's or a script's
credential (or none) are written to the audit log once they end, with their status code
(:mod:`runtime.auth.audit`); the services' own calls are not.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import grpc
import grpc.aio

from runtime.auth.audit import AUDITED_SCOPES, AuditTrail, audited_caller
from runtime.auth.authenticator import Authenticator
from runtime.auth.keys import AuditEntry
from runtime.auth.scopes import Principal, Scope, granted_by
from runtime.errors import PermissionDenied, SwitchboardError, grpc_status_for
from runtime.grpc_layers import HandlerLayer, UnaryBehavior, unary_wrapped
from runtime.grpc_types import MethodHandler, ServicerContext
from runtime.grpc_wrap import Around, wrap_around
from runtime.interceptors import status_code_of
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


class AuthInterceptor(HandlerLayer):
    def __init__(self, authenticator: Authenticator, scopes: Mapping[str, Scope]) -> None:
        super().__init__()
        self.authenticator = authenticator
        self.scopes = dict(scopes)
        self.audit = AuditTrail(authenticator)

    def wrap(self, method: str, handler: MethodHandler) -> MethodHandler:
        if method.startswith(_OPEN_METHOD_PREFIXES):
            return handler
        admit = self._admission(method)
        if self.scopes.get(method) not in AUDITED_SCOPES:
            # Nothing to audit: the check, then the servicer. A unary answer needs no context
            # manager around it (it cost an async generator per call on the hottest reads).
            unary = unary_wrapped(handler, _after(admit))
            if unary is not None:
                return unary
        return wrap_around(handler, self._guard(method, admit))

    def _admission(self, method: str) -> Callable[[ServicerContext], Awaitable[Principal | None]]:
        """The check run before the servicer: the caller's principal, or the call aborted with
        UNAUTHENTICATED / PERMISSION_DENIED (logged, and audited for an audited method)."""
        needed = self.scopes.get(method)
        audited_method = needed in AUDITED_SCOPES
        authenticator = self.authenticator
        audit = self.audit

        async def admit(context: ServicerContext) -> Principal | None:
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
                code = grpc_status_for(error)
                if audited_method and audited_caller(principal) and code in _REFUSALS:
                    audit.record(_entry(method, principal, code, error.message))
                await context.abort(code, error.message)
            return principal

        return admit

    def _guard(self, method: str, admit: Callable[[ServicerContext], Awaitable[Principal | None]]) -> Around:
        audited_method = self.scopes.get(method) in AUDITED_SCOPES
        audit = self.audit

        @asynccontextmanager
        async def guard(context: ServicerContext) -> AsyncIterator[None]:
            principal = await admit(context)
            if not (audited_method and audited_caller(principal)):
                yield
                return
            code = grpc.StatusCode.UNKNOWN
            try:
                yield
                code = status_code_of(context)
            except grpc.aio.AbortError:
                code = status_code_of(context)
                raise
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED
                raise
            except SwitchboardError as error:
                code = grpc_status_for(error)
                raise
            except BaseException:
                code = grpc.StatusCode.INTERNAL
                raise
            finally:
                audit.record(_entry(method, principal, code))

        return guard


def _entry(method: str, principal: Principal | None, code: grpc.StatusCode, reason: str = "") -> AuditEntry:
    outcome = "ok" if code is grpc.StatusCode.OK else "refused" if code in _REFUSALS else "failed"
    detail = f"gRPC {code.name}" + (f": {reason}" if reason else "")
    actor = principal.name if principal else "anonymous"
    return AuditEntry(time.time(), actor, f"RPC {method}", method, outcome, detail)


def _after(admit: Callable[[ServicerContext], Awaitable[object]]) -> Callable[[UnaryBehavior], UnaryBehavior]:
    """A unary behavior that runs once ``admit`` passed."""

    def wrap(behavior: UnaryBehavior) -> UnaryBehavior:
        async def admitted(request: Any, context: ServicerContext) -> Any:
            await admit(context)
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

        return admitted

    return wrap


_REFUSALS = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
