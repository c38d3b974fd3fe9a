"""One grpc.aio server, as :mod:`runtime.grpc_server` runs it: built with health, reflection and
the handler layers, started, drained on stop; :func:`serve` holds it until SIGTERM/SIGINT.

The drain: health turns NOT_SERVING, the stopping hooks end long-lived streams, calls in flight
get the grace (at most 4.5 s) to finish, the audit trail is flushed, then the shutdown hooks run,
each bounded by what is left of ``EXIT_BUDGET_SECONDS``. A watchdog exits the process with status
1 if a drain overruns that budget.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import cast

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from runtime import telemetry
from runtime.auth.authenticator import Authenticator
from runtime.auth.grpc_server import AuthInterceptor, check_declared
from runtime.call_cap import CallCap
from runtime.grpc_layers import HandlerLayer, LayeredServer
from runtime.grpc_service import GrpcService, shutdown_event
from runtime.health import HealthReporter
from runtime.interceptors import ServerInterceptor
from runtime.logging import get_logger
from runtime.process import on_stop_signal

__all__ = ["EXIT_BUDGET_SECONDS", "PENDING_CALLS_LIMIT", "PENDING_CALL_MAX_SECONDS", "GrpcServer", "serve"]

log = get_logger("runtime.server")

PENDING_CALLS_LIMIT = 20_000
"""Calls that may wait in gRPC core for the server to take them (a few KB each)."""

PENDING_CALL_MAX_SECONDS = 3600
"""How long a call may wait in gRPC core for the server to take it before core cancels it: longer
than any deadline our clients set, so a waiting call ends by its own deadline (DEADLINE_EXCEEDED,
which says what happened) or is served; never by core's 30 s default (CANCELLED, no log line)."""


# Budget from the signal to process exit; the drain grace comes out of it first.
EXIT_BUDGET_SECONDS = 4.8


class GrpcServer:
    """One grpc.aio server with health, reflection, handler layers and an explicit drain."""

    def __init__(
        self,
        service: GrpcService,
        *,
        authenticator: Authenticator,
        credentials: grpc.ServerCredentials | None = None,
        grace_seconds: float = 4.0,
        health_interval_seconds: float = 1.0,
        reuse_port: bool = False,
        max_connection_age_seconds: float = 0.0,
        max_concurrent_rpcs: int = 0,
        health_port: int | None = None,
        pending_call_max_seconds: int = PENDING_CALL_MAX_SECONDS,
    ) -> None:
        check_declared(list(service.service_names), service.scopes)
        self.service = service
        self.credentials = credentials
        self.grace_seconds = min(max(grace_seconds, 0.0), 4.5)
        self.stopping = shutdown_event()
        self.health = HealthReporter(
            service.service_names, service.health_checks, interval=health_interval_seconds, tasks=service.tasks
        )
        self.auth = AuthInterceptor(authenticator, service.scopes)
        # Wrapped around each method's handler as it is registered (runtime.grpc_layers), not run
        # as grpc.aio interceptors, which cost a coroutine per layer on every call.
        layers: list[HandlerLayer] = [
            # Outermost: a call past the cap is refused (counted, logged) before anything else runs.
            *([CallCap(max_concurrent_rpcs)] if max_concurrent_rpcs > 0 else []),
            telemetry.server_interceptor(),
            ServerInterceptor(debug_when_ok=service.debug_when_ok),
            self.auth,
        ]
        self.server = grpc.aio.server(
            # A second process on the same port must fail loudly, not share it; only the
            # workers of one GRPC_PROCESSES unit share their port on purpose.
            options=[
                ("grpc.so_reuseport", 1 if reuse_port else 0),
                *_connection_age_options(max_connection_age_seconds),
                # gRPC core kills (CANCELLED, before any handler or log line sees them) the calls that
                # arrive while more than max_pending_requests (default 1,000) wait for this process to
                # take them. Under a burst the Python loop takes them slower than they arrive, so that
                # queue is made long enough to hold a burst; the calls wait in it within their own
                # deadline, and the concurrency cap (runtime.call_cap) answers the excess with a clear,
                # logged and counted refusal.
                ("grpc.server.max_pending_requests", PENDING_CALLS_LIMIT),
                ("grpc.server.max_pending_requests_hard_limit", PENDING_CALLS_LIMIT),
                # The same queue also kills, with a bare CANCELLED, every call that has waited in it
                # longer than this (core's default: 30 s) — under CPU starvation a burst takes that
                # long to be taken. The call's own deadline is what should bound its wait.
                ("grpc.server_max_unrequested_time_in_server", pending_call_max_seconds),
            ],
        )
        registrar = cast(grpc.aio.Server, LayeredServer(self.server, layers))
        service.register(registrar)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, registrar)
        # The asyncio servicer named outright: enable_server_reflection picks the blocking one for
        # anything that is not a grpc.aio.Server, which the stand-in is not.
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer([*service.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]),
            registrar,
        )
        self.port = 0
        self.health_port = health_port
        self.health_server: grpc.aio.Server | None = None
        if health_port is not None:
            # Health only: no other service, no credentials asked (health is public anyway), so a
            # probe reaches it in plaintext while the service port requires client certificates.
            self.health_server = grpc.aio.server(options=[("grpc.so_reuseport", 1 if reuse_port else 0)])
            health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, self.health_server)

    async def start(self) -> int:
        """Bind, evaluate health once and start serving; returns the bound port."""
        if self.credentials is None:
            self.port = self.server.add_insecure_port(self.service.listen_address)
        else:
            self.port = self.server.add_secure_port(self.service.listen_address, self.credentials)
        if self.health_server is not None:
            host = self.service.listen_address.rpartition(":")[0]
            self.health_port = self.health_server.add_insecure_port(f"{host}:{self.health_port}")
        await self.health.start()
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        log.info(
            "server started",
            address=self.service.listen_address,
            port=self.port,
            services=list(self.service.service_names),
            serving=self.health.serving,
        )
        return self.port

    async def stop(self, deadline: float | None = None) -> None:
        """NOT_SERVING, drain in-flight calls, run the shutdown hooks before ``deadline`` (monotonic)."""
        if deadline is None:
            deadline = time.monotonic() + EXIT_BUDGET_SECONDS
        self.stopping.set()
        for end_streams in self.service.stopping_hooks:
            end_streams()
        await self.health.shutdown()
        grace = max(0.0, min(self.grace_seconds, deadline - time.monotonic() - 0.3))
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(0)
        await self.auth.audit.drain(within=max(0.05, min(1.0, deadline - time.monotonic() - 0.2)))
        for hook in self.service.shutdown_hooks:
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(remaining, 0.05)):
                    await hook()
            except TimeoutError:
                log.warning("shutdown hook timed out", hook=_name_of(hook))
            except Exception:
                log.exception("shutdown hook failed", hook=_name_of(hook))


def _connection_age_options(seconds: float) -> list[tuple[str, int]]:
    """Close connections after ``seconds`` (gRPC adds ±10 % jitter) so clients re-resolve and
    rebalance (``runtime.grpc_client``); open streams may run on (no age grace limit)."""
    return [("grpc.max_connection_age_ms", int(seconds * 1000))] if seconds > 0 else []


def _name_of(hook: object) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


async def serve(
    service: GrpcService,
    *,
    authenticator: Authenticator,
    credentials: grpc.ServerCredentials | None = None,
    grace_seconds: float = 4.0,
    health_interval_seconds: float = 1.0,
    stop: asyncio.Event | None = None,
    reuse_port: bool = False,
    max_connection_age_seconds: float = 0.0,
    max_concurrent_rpcs: int = 0,
    health_port: int | None = None,
) -> None:
    """Serve ``service`` until SIGTERM/SIGINT (or ``stop`` is set), then drain and return."""
    server = GrpcServer(
        service,
        authenticator=authenticator,
        credentials=credentials,
        grace_seconds=grace_seconds,
        health_interval_seconds=health_interval_seconds,
        reuse_port=reuse_port,
        max_connection_age_seconds=max_connection_age_seconds,
        max_concurrent_rpcs=max_concurrent_rpcs,
        health_port=health_port,
    )
    stop = stop or asyncio.Event()
    received: list[str] = []

    def on_signal(name: str) -> None:
        # Repeated signals are ignored (on_stop_signal); the watchdog bounds the drain instead.
        received.append(name)
        # The span flush after the drain has its own budget (TRACE_FLUSH_SECONDS) on top.
        _start_exit_watchdog(EXIT_BUDGET_SECONDS + telemetry.flush_seconds() + 0.1)
        stop.set()

    with on_stop_signal(on_signal):
        try:
            await server.start()
        except Exception:
            # Port taken, say: still release what build() opened (its shutdown hooks), or the
            # process would hang at exit on the service's own tasks instead of failing.
            await server.stop(deadline=time.monotonic() + 1.0)
            raise
        await stop.wait()
        started = time.monotonic()
        log.info("server stopping", signal=received[0] if received else None, grace_seconds=grace_seconds)
        await server.stop(deadline=started + EXIT_BUDGET_SECONDS - 0.3)
        log.info("server stopped", duration_ms=round((time.monotonic() - started) * 1000, 1))


def _start_exit_watchdog(seconds: float) -> None:
    """Hard exit if the drain overruns (a handler ignoring cancellation, a stuck hook)."""

    def overrun() -> None:
        log.error("shutdown overran its budget, exiting now", budget_seconds=seconds)
        os._exit(1)

    timer = threading.Timer(seconds, overrun)
    timer.daemon = True
    timer.start()
