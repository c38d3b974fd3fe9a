"""The one bootstrap of every Switchboard process: gRPC services, queue workers and the gateway.

An entry point loads its settings and hands them over::

    settings = load_settings(WorkflowSettings)
    run_process("workflow_worker", settings, lambda: serve(workflow_queue(settings), settings.redis_url))

:func:`run_process` does, in this order, what every kind of process needs:

1. logging (:func:`runtime.logging.configure_logging`: JSON lines, ``service`` on each line),
2. tracing (:func:`runtime.telemetry.configure_process_telemetry`, the one place OTel is set up),
3. ``/metrics`` on ``METRICS_PORT`` (unless the process serves it itself, as the gateway does),
4. the ``main`` coroutine on uvloop's event loop (:mod:`runtime.event_loop`),

then flushes spans (at most ``TRACE_FLUSH_SECONDS``) and exits: 0 when ``main`` returned, 1 when
it raised (logged first), 130 on a Ctrl-C that came before ``main`` installed its own handlers.
``main`` stops on SIGTERM/SIGINT: :func:`on_stop_signal` calls a function once on the first of
them (supervisors often send both; repeats are ignored). gRPC services use
:func:`runtime.grpc_server.run_service` and queue workers :func:`runtime.queue.runner.run_worker`,
both built on these pieces; the gateway runs uvicorn as its ``main`` (uvicorn handles the
signals itself and the app serves ``/metrics``).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from runtime import telemetry
from runtime.config import CommonSettings
from runtime.event_loop import event_loop_factory
from runtime.logging import configure_logging, get_logger
from runtime.metrics import MetricsServer, start_metrics_server

__all__ = [
    "STOP_SIGNALS",
    "init_process",
    "keep_freed_heap",
    "mallopt",
    "on_stop_signal",
    "run_main",
    "run_process",
    "settle_heap_for_bursts",
]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = get_logger("runtime.process")


def init_process(name: str, settings: CommonSettings, *, metrics: bool = True) -> MetricsServer | None:
    """Logging, tracing and (with ``metrics``) ``/metrics`` for the process called ``name``."""
    configure_logging(settings.log_level, fmt=settings.log_format, service=name)
    telemetry.configure_process_telemetry(name, settings)
    if not metrics:
        return None
    server = start_metrics_server(settings.metrics_port, settings.metrics_host)
    if server is not None:
        log.info("metrics listening", url=f"http://{settings.metrics_host}:{server.port}/metrics")
    return server


@contextmanager
def on_stop_signal(stop: Callable[[str], object]) -> Iterator[None]:
    """While inside, the first SIGTERM/SIGINT calls ``stop(signal_name)``; later ones are ignored.

    Installs the handlers on the running event loop and removes them on the way out.
    """
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if received:
            return
        received.append(sig.name)
        stop(sig.name)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def run_main(main: Callable[[], Awaitable[object]], *, crashed: str = "process crashed") -> NoReturn:
    """Run ``main()`` on the process's event loop, flush spans, and exit (0, 1 or 130)."""
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_call(main))
    except KeyboardInterrupt:  # Ctrl-C before main installed its handlers
        telemetry.shutdown()
        sys.exit(130)
    except Exception:
        log.exception(crashed)
        telemetry.shutdown()
        sys.exit(1)
    # The /metrics thread is a daemon: closing it would cost its 0.5 s poll for nothing.
    telemetry.shutdown()
    sys.exit(0)


async def _call(main: Callable[[], Awaitable[object]]) -> None:
    await main()


def run_process(
    name: str, settings: CommonSettings, main: Callable[[], Awaitable[object]], *, metrics: bool = True
) -> NoReturn:
    """:func:`init_process`, then :func:`run_main`: the whole life of a non-gRPC process."""
    init_process(name, settings, metrics=metrics)
    run_main(main)


def settle_heap_for_bursts() -> None:
    """Call once start-up is done, in a process that allocates short-lived objects in bursts.

    Everything built so far lives as long as the process: collect once and freeze it, so the
    collector's passes no longer walk it. Then collect the young generation 70× less often
    (threshold 50,000 instead of 700): otherwise a burst's objects, alive at once (a queue's
    claimed jobs, a socket read's parsed AMI events), survive collection after collection into the
    old generation. Measured: p99 pickup latency in queue workers, ~14 % of the ingest's CPU in a
    replay.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
KEPT_HEAP_BYTES = 64 << 20
"""Free memory glibc keeps at the top of the heap for reuse instead of handing it back (:func:`keep_freed_heap`)."""
MMAP_THRESHOLD_BYTES = 16 << 20
"""Allocations at least this large still get pages of their own (returned to the system when freed)."""


def keep_freed_heap() -> bool:
    """Let glibc's malloc keep freed memory for the next burst instead of returning it at once.

    With its defaults (``M_TRIM_THRESHOLD`` 128 KiB, raised only by the frees of large ``mmap``-ed
    blocks) a process whose live memory rises and falls by megabytes with each burst hands the
    heap's top back to the kernel after every wave and takes it again with the next one: each
    page comes back as a page fault and a zeroed page. The ingest took ~50,000 minor faults
    (~200 MB of fresh pages) in a replay that the in-process parser runs with none. Up to
    :data:`KEPT_HEAP_BYTES` of freed heap now stays mapped; blocks of :data:`MMAP_THRESHOLD_BYTES`
    or more are still mapped on their own. False (nothing changed) where the C library has no
    ``mallopt`` or refuses the values (musl, other allocators).
    """
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, KEPT_HEAP_BYTES)


def mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt(param, value)`` (``param`` as in ``<malloc.h>``); False where the C
    library has no ``mallopt`` or refuses the value (nothing changed)."""
    try:
        function = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    return bool(function(param, value))
