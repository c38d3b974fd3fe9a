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
instead of holding the drain until the grace runs out (:mod:`runtime.grpc_service`).

This module is the entry point; :mod:`runtime.grpc_service` holds what a service hands over and
:mod:`runtime.grpc_serving` the server itself (built, started, drained) and :func:`serve`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

from runtime.auth.authenticator import Authenticator
from runtime.auth.tls import server_credentials
from runtime.config import CommonSettings, load_settings
from runtime.event_loop import event_loop_factory
from runtime.grpc_service import GrpcService, ShutdownHook, shutdown_event
from runtime.grpc_serving import PENDING_CALL_MAX_SECONDS, GrpcServer, serve
from runtime.logging import bind_context, configure_logging, get_logger
from runtime.multiprocess import STOP_BUDGET_SECONDS, supervise, watch_parent, worker_index
from runtime.process import init_process, run_main

__all__ = [
    "PENDING_CALL_MAX_SECONDS",
    "GrpcServer",
    "GrpcService",
    "ShutdownHook",
    "run_service",
    "serve",
    "shutdown_event",
]

SettingsT = TypeVar("SettingsT", bound=CommonSettings)

log = get_logger("runtime.server")


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
