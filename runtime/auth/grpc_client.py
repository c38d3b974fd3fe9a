"""The client side: every internal gRPC channel presents the internal identity.

:func:`internal_channel` is how one Switchboard process dials another (gateway → backends,
ami_ingest → status, status → ami_ingest): TLS with this process's client certificate when
``GRPC_TLS_*`` is set, and the ``authorization: Bearer`` metadata of :func:`internal_token`
on every call (``AUTH_INTERNAL_TOKEN``, else ``AUTH_BOOTSTRAP_TOKEN``; none under mTLS alone,
where the certificate is the identity), added by the interceptor that also traces the call
(:mod:`runtime.grpc_client_calls`). :func:`bearer_interceptors` adds any token to a
grpc.aio channel, :func:`bearer_channel` to a blocking one (scripts, benchmarks, tests).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio

from runtime.auth.tls import client_credentials
from runtime.config import CommonSettings
from runtime.grpc_client import CHANNEL_OPTIONS, target
from runtime.grpc_client_calls import UnaryCaller, client_interceptors

__all__ = [
    "bearer_channel",
    "bearer_interceptors",
    "bearer_metadata",
    "internal_channel",
    "internal_token",
    "internal_unary_channel",
]


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def internal_token(settings: CommonSettings) -> str | None:
    token = settings.auth_internal_token or settings.auth_bootstrap_token
    return token.get_secret_value() if token is not None else None


def _with_token(details: grpc.aio.ClientCallDetails, metadata: tuple[tuple[str, str], ...]) -> Any:
    existing = tuple(details.metadata or ())
    if any(key == "authorization" for key, _ in existing):
        return details  # an explicit credential on the call wins
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*existing, *metadata),
        details.credentials,
        details.wait_for_ready,
    )


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self.metadata), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self.metadata), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_token(client_call_details, self.metadata), request_iterator)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_with_token(client_call_details, self.metadata), request_iterator)


def bearer_interceptors(token: str | None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding ``authorization: Bearer <token>`` to every call (none for no token)."""
    if not token:
        return []
    metadata = bearer_metadata(token)
    return [_UnaryUnary(metadata), _UnaryStream(metadata), _StreamUnary(metadata), _StreamStream(metadata)]


def internal_channel(
    address: str, settings: CommonSettings, *, options: Sequence[tuple[str, Any]] | None = None
) -> grpc.aio.Channel:
    """A grpc.aio channel to another Switchboard service, carrying the internal identity.

    Its calls are traced by :mod:`runtime.grpc_client_calls` (the bearer metadata, the CLIENT
    span and its ``traceparent`` in one interceptor), so the channel is built with grpc's own
    constructors: the ones in ``grpc.aio`` may be OpenTelemetry's wrappers, which would add
    the library's interceptor as well.
    """
    token = internal_token(settings)
    interceptors = client_interceptors(bearer_metadata(token) if token else ())
    credentials = client_credentials(settings)
    # Round robin over every replica the name resolves to (runtime.grpc_client).
    channel_options = [*CHANNEL_OPTIONS, *(options or ())]
    if credentials is None:
        return _GRPC_CHANNELS.insecure_channel(target(address), options=channel_options, interceptors=interceptors)
    return _GRPC_CHANNELS.secure_channel(
        target(address), credentials, options=channel_options, interceptors=interceptors
    )


def internal_unary_channel(
    address: str, settings: CommonSettings, *, options: Sequence[tuple[str, Any]] | None = None
) -> tuple[grpc.aio.Channel, UnaryCaller]:
    """:func:`internal_channel` without interceptors, and the :class:`UnaryCaller` that makes its
    unary-unary calls with the metadata and span the interceptors would: for a process's hottest
    unary calls, which then skip grpc.aio's interceptor machinery. (The same target and options
    as :func:`internal_channel`'s: gRPC shares the connection between two such channels.)"""
    token = internal_token(settings)
    credentials = client_credentials(settings)
    channel_options = [*CHANNEL_OPTIONS, *(options or ())]
    if credentials is None:
        channel = _GRPC_CHANNELS.insecure_channel(target(address), options=channel_options)
    else:
        channel = _GRPC_CHANNELS.secure_channel(target(address), credentials, options=channel_options)
    return channel, UnaryCaller(bearer_metadata(token) if token else ())


_GRPC_CHANNELS: Any = importlib.import_module("grpc.aio._channel")
"""grpc.aio's channel constructors as grpc defines them (``grpc.aio.insecure_channel`` is
replaced by OpenTelemetry's gRPC instrumentation once a process configures telemetry)."""


class _SyncBearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self.metadata = bearer_metadata(token)

    def _details(self, details: Any) -> Any:
        existing = tuple(details.metadata or ())
        if any(key == "authorization" for key, _ in existing):
            return details
        return _Details(
            details.method,
            details.timeout,
            (*existing, *self.metadata),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(
        self, method: str, timeout: Any, metadata: Any, credentials: Any, wait_for_ready: Any, compression: Any
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def bearer_channel(
    address: str, token: str, *, options: Sequence[tuple[str, Any]] | None = None, credentials: Any = None
) -> grpc.Channel:
    """A blocking channel sending ``token`` on every call."""
    if credentials is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        channel = grpc.secure_channel(address, credentials, options=options)
    return grpc.intercept_channel(channel, _SyncBearer(token))
