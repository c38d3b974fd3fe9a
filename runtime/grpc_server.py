"""The grpc.aio server bootstrap every Switchboard service runs, and its process entry point.

A service's ``__main__.py`` describes itself and hands over::

    async def build(settings: StatusSettings) -> GrpcService:
        redis = create_redis(settings.redis_url)
        servicer = StatusServicer(...)
        return GrpcService(
            name="status",
            address=settings.status_addr,
            register=lambda server: status_pb2_grpc.add_StatusServiceServicer_to_server(servicer, server),
            service_names=[status_pb2.DESCRIPTOR.services_by_name["StatusService"].full_name],
            scopes=method_scopes(STATUS_SERVICE, {"ListOperators": Scope.READ, ..., "Clear": Scope.INTERNAL}),
            health_checks={"redis": redis_health_check(redis)},
            shutdown_hooks=[redis.aclose],
        )

    if __name__ == "__main__":
        run_service("status", StatusSettings, build)

:func:`run_service` loads settings (exit 2 on a bad value), configures logging, telemetry and
``/metrics``, builds the service, then serves until SIGTERM/SIGINT, on uvloop's event loop when
uvloop is installed (:func:`runtime.event_loop.event_loop_factory`). The server carries
grpc.health.v1 (from the real checks, see :mod:`runtime.health`), server reflection, the
OpenTelemetry layer, :class:`runtime.interceptors.ServerInterceptor` and
:class:`runtime.auth.grpc_server.AuthInterceptor` (behind :class:`runtime.call_cap.CallCap` when
``GRPC_MAX_CONCURRENT_RPCS`` is set), wrapped around each method's handler as it is registered
(:mod:`runtime.grpc_layers`: ``register`` is handed a stand-in for the server that does this):
every method of the service must have a
declared scope (``scopes``) or the server refuses to start, and every call is authenticated
(:class:`runtime.auth.Authenticator`, built from the settings by :func:`run_service`). With
``GRPC_TLS_*`` set the port is TLS and requires client certificates (:mod:`runtime.auth.tls`);
``GRPC_HEALTH_PORT`` then adds a plaintext port that serves grpc.health.v1 and nothing else, for
probes that cannot present a client certificate (the kubelet's ``grpc:`` probe).

A service with a one-time step before serving (database migrations) passes it as ``prepare``:
it runs once per start, before ``build``. With ``GRPC_PROCESSES=N`` (N > 1) the entry process
runs ``prepare`` and then supervises N worker processes that each ``build`` and serve on the
same port (:mod:`runtime.multiprocess` has the details: SO_REUSEPORT, signals, metrics ports).

Shutdown on SIGTERM/SIGINT: health turns NOT_SERVING, the server stops accepting RPCs, calls in
flight get ``SHUTDOWN_GRACE_SECONDS`` (default 4, at most 4.5) to finish before being
cancelled, then the shutdown hooks run (bounded) and the process exits 0 — within 5 s of the
signal, plus at most ``TRACE_FLUSH_SECONDS`` while its last spans reach the collector. Repeated
signals are ignored; a watchdog exits with status 1 if the drain overruns.
Long-lived server streams (``Watch``) should end themselves when :func:`shutdown_event` is set,
instead of holding the drain until the grace runs out::

    stop = shutdown_event()
    while not stop.is_set():
        change = await next_change_or(stop)   # e.g. asyncio.wait on both
        yield change
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar, cast

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from runtime import telemetry
from runtime.auth.authenticator import Authenticator
from runtime.auth.grpc_server import AuthInterceptor, check_declared
from runtime.auth.scopes import Scope
from runtime.auth.tls import server_credentials
from runtime.call_cap import CallCap
from runtime.config import CommonSettings, load_settings, parse_address
from runtime.event_loop import event_loop_factory
from runtime.grpc_layers import HandlerLayer, LayeredServer
from runtime.health import HealthCheck, HealthReporter
from runtime.interceptors import ServerInterceptor
from runtime.logging import bind_context, configure_logging, get_logger
from runtime.multiprocess import STOP_BUDGET_SECONDS, supervise, watch_parent, worker_index
from runtime.process import init_process, on_stop_signal, run_main

__all__ = [
    "GrpcServer",
    "GrpcService",
    "ShutdownHook",
    "run_service",
    "serve",
    "shutdown_event",
]

ShutdownHook = Callable[[], Awaitable[object]]
SettingsT = TypeVar("SettingsT", bound=CommonSettings)

log = get_logger("runtime.server")

PENDING_CALLS_LIMIT = 20_000
"""Calls that may wait in gRPC core for the server to take them (a few KB each)."""

PENDING_CALL_MAX_SECONDS = 3600
"""How long a call may wait in gRPC core for the server to take it before core cancels it: longer
than any deadline our clients set, so a waiting call ends by its own deadline (DEADLINE_EXCEEDED,
which says what happened) or is served; never by core's 30 s default (CANCELLED, no log line)."""


# Budget from the signal to process exit; the drain grace comes out of it first.
EXIT_BUDGET_SECONDS = 4.8


# One event per event loop, so in-process tests (a loop per test) never see an old drain.
_shutdown_events: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()


def shutdown_event() -> asyncio.Event:
    """The event set when this loop's server starts draining (call it inside the event loop)."""
    loop = asyncio.get_running_loop()
    event = _shutdown_events.get(loop)
    if event is None:
        event = _shutdown_events[loop] = asyncio.Event()
    return event


@dataclass(frozen=True)
class GrpcService:
    """What a service contributes to the bootstrap."""

    name: str
    address: str
    register: Callable[[grpc.aio.Server], None]
    service_names: Sequence[str]
    health_checks: Mapping[str, HealthCheck] = field(default_factory=dict)
    shutdown_hooks: Sequence[ShutdownHook] = ()
    stopping_hooks: Sequence[Callable[[], None]] = ()
    """Called as the server begins to stop, before it drains in-flight calls: end long-lived streams
    here, or the drain waits the whole grace for them and leaves the shutdown hooks no time."""
    debug_when_ok: frozenset[str] = frozenset()
    """Full method names (``/pkg.Service/Method``) of hot RPCs whose successful calls log at DEBUG:
    one INFO line per fast read (thousands a second) would be most of the log and a real share of
    the CPU. Errors keep their level, a call slower than ``SLOW_CALL_SECONDS`` is still logged at
    INFO, and metrics and spans count every call (:mod:`runtime.interceptors`)."""
    scopes: Mapping[str, Scope] = field(default_factory=dict)
    """The scope each method needs, ``/pkg.Service/Method`` → scope (``runtime.auth.method_scopes``)."""
    bind_host: str | None = None
    """Listen on this host with the port of ``address`` (``GRPC_BIND_HOST``); None: ``address`` itself."""

    @property
    def listen_address(self) -> str:
        if self.bind_host is None:
            return self.address
        _, port = parse_address(self.address)
        host = f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host
        return f"{host}:{port}"


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
        self.health = HealthReporter(service.service_names, service.health_checks, interval=health_interval_seconds)
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


def run_service(
    name: str,
    settings_cls: type[SettingsT],
    build: Callable[[SettingsT], Awaitable[GrpcService]],
    prepare: Callable[[SettingsT], Awaitable[object]] | None = None,
) -> None:
    """Process entry point: settings → logging/telemetry/metrics → prepare → build → serve → exit 0.

    With ``GRPC_PROCESSES`` > 1 this process only runs ``prepare`` and supervises the workers.
    """
    settings = load_settings(settings_cls)
    worker = worker_index()
    if worker is None and settings.grpc_processes > 1:
        _run_supervisor(name, settings, prepare)
    if worker is not None:
        bind_context(worker=worker)
    init_process(name, settings)

    async def main() -> None:
        if prepare is not None and worker is None:
            await prepare(settings)
        service = await build(settings)
        if service.bind_host is None and settings.grpc_bind_host:
            service = dataclasses.replace(service, bind_host=settings.grpc_bind_host)
        stop = asyncio.Event()
        orphan_watch = asyncio.create_task(watch_parent(stop)) if worker is not None else None
        authenticator = Authenticator.from_settings(settings)
        try:
            await serve(
                service,
                authenticator=authenticator,
                credentials=server_credentials(settings),
                grace_seconds=settings.shutdown_grace_seconds,
                health_interval_seconds=settings.health_check_interval_seconds,
                stop=stop,
                reuse_port=worker is not None,
                max_connection_age_seconds=settings.grpc_max_connection_age_seconds,
                max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
                health_port=settings.grpc_health_port,
            )
        finally:
            if orphan_watch is not None:
                orphan_watch.cancel()
            await authenticator.close()

    run_main(main, crashed="service crashed")


def _run_supervisor(
    name: str, settings: SettingsT, prepare: Callable[[SettingsT], Awaitable[object]] | None
) -> NoReturn:
    configure_logging(settings.log_level, fmt=settings.log_format, service=name)
    if prepare is not None:

        async def run_prepare() -> None:
            await prepare(settings)

        try:
            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                runner.run(run_prepare())
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception:
            log.exception("prepare failed")
            sys.exit(1)
    sys.exit(
        supervise(
            name,
            settings.grpc_processes,
            settings.metrics_port,
            stop_budget_seconds=STOP_BUDGET_SECONDS + settings.trace_flush_seconds,
        )
    )
