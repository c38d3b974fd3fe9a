"""``GRPC_PROCESSES=N``: one gRPC service served by N processes sharing one port.

One Python process serving grpc.aio tops out around 2,000 small calls/s (the GIL, and grpc's
own per-call work in it). Services whose replicas are independent readers (status follows the
Redis stream into an in-memory mirror) can use more cores of one host by running N copies on
the same port: with ``grpc.so_reuseport=1`` the kernel spreads incoming *connections* over the
processes (a connection, and every call on it, stays with one process).

Shape, chosen for being easy to reason about rather than clever:

- The entry process becomes a **supervisor**: it loads the settings (a bad value still exits 2
  with one line), runs the service's one-time ``prepare`` step (migrations) once, then starts N
  **workers** by re-running its own command line (``sys.orig_argv``, so ``python -m
  services.status`` stays a module run) with ``SWITCHBOARD_GRPC_WORKER=<index>`` set. Re-exec
  rather than fork: nothing of the parent's gRPC/asyncio/thread state leaks into a worker. The
  supervisor never serves RPCs itself.
- Each worker is an ordinary service process: its own ``build(settings)``, health from its own
  checks, logging with ``worker=<index>``, and binds with SO_REUSEPORT (only in this mode:
  otherwise a second process on a taken port fails loudly).
- ``/metrics``: one endpoint per worker. ``METRICS_PORT=0`` gives every worker a free port
  (each logs ``metrics listening``); a fixed ``METRICS_PORT=P`` gives worker *i* port ``P+i``;
  ``-1`` stays off. (prometheus_client's multiprocess mode would merge them but changes gauge
  semantics and needs a shared directory wiped at every start: not worth it here.)
- SIGTERM/SIGINT to the supervisor is forwarded (SIGTERM) to every worker, which drains as a
  single process does; the supervisor exits 0 when all of them exited 0. A worker that exits
  on its own (crash, port taken) is logged, the others are stopped and the supervisor exits 1:
  the unit fails as a whole and its orchestrator (systemd ``Restart=``, Kubernetes) restarts it,
  rather than this module growing a restart policy of its own.
- A worker whose supervisor vanished (SIGKILL) notices within a second and drains itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from runtime.logging import get_logger

__all__ = ["STOP_BUDGET_SECONDS", "WORKER_ENV", "supervise", "watch_parent", "worker_env", "worker_index"]

WORKER_ENV = "SWITCHBOARD_GRPC_WORKER"
_SUPERVISOR_ENV = "SWITCHBOARD_GRPC_SUPERVISOR"
POLL_SECONDS = 0.05
# A worker drains within 5 s of SIGTERM (its own watchdog fires at 4.9 s plus its span flush
# budget, TRACE_FLUSH_SECONDS); past this plus that budget, kill it.
STOP_BUDGET_SECONDS = 5.5

log = get_logger("runtime.multiprocess")


def worker_index() -> int | None:
    """This process's worker index when a supervisor started it, else None."""
    value = os.environ.get(WORKER_ENV, "")
    return int(value) if value.isdigit() else None


def worker_env(index: int, metrics_port: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of worker ``index``: the supervisor's, marked, with its own metrics port."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k.upper() != "METRICS_PORT"}
    env[WORKER_ENV] = str(index)
    env[_SUPERVISOR_ENV] = str(os.getpid())
    env["METRICS_PORT"] = str(metrics_port + index if metrics_port > 0 else metrics_port)
    return env


def _worker_command() -> list[str]:
    # orig_argv keeps "-m services.status" (argv[0] would be the module's file path).
    return [sys.executable, *sys.orig_argv[1:]]


def supervise(name: str, processes: int, metrics_port: int, *, stop_budget_seconds: float = STOP_BUDGET_SECONDS) -> int:
    """Run ``processes`` workers of this very command until they stop; returns the exit status.
    A worker still running ``stop_budget_seconds`` after the stop signal is killed."""
    if metrics_port > 0 and metrics_port + processes - 1 > 65535:
        log.error("metrics ports out of range", metrics_port=metrics_port, processes=processes)
        return 2
    requested: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        requested.append(signum)  # forwarded by the loop below, which owns the Popen objects

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for index in range(processes):
            workers[index] = subprocess.Popen(_worker_command(), env=worker_env(index, metrics_port))
        log.info("workers started", service=name, processes=processes, pids=[p.pid for p in workers.values()])
        return _watch(workers, requested, stop_budget_seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def _watch(workers: dict[int, subprocess.Popen[bytes]], requested: list[int], stop_budget_seconds: float) -> int:
    failed = False
    stop_sent_at: float | None = None
    running = dict(workers)
    while running:
        for index, worker in list(running.items()):
            code = worker.poll()
            if code is None:
                continue
            del running[index]
            if stop_sent_at is None:
                log.error("worker exited unexpectedly, stopping the others", worker=index, pid=worker.pid, code=code)
                failed = True
            elif code != 0:
                log.error("worker did not stop cleanly", worker=index, pid=worker.pid, code=code)
                failed = True
        if running and stop_sent_at is None and (requested or failed):
            if requested:
                log.info("stopping workers", signal=signal.Signals(requested[0]).name)
            for worker in running.values():
                worker.send_signal(signal.SIGTERM)
            stop_sent_at = time.monotonic()
        if stop_sent_at is not None and time.monotonic() - stop_sent_at > stop_budget_seconds:
            for index, worker in running.items():
                log.error("worker overran the stop budget, killing it", worker=index, pid=worker.pid)
                worker.kill()
                worker.wait()
            return 1
        time.sleep(POLL_SECONDS)
    log.info("workers stopped", failed=failed)
    return 1 if failed else 0


async def watch_parent(stop: asyncio.Event, interval: float = 0.5) -> None:
    """Set ``stop`` once the supervisor that started this worker is gone (we were re-parented)."""
    supervisor = os.environ.get(_SUPERVISOR_ENV, "")
    if not supervisor.isdigit():
        return
    while not stop.is_set():
        if os.getppid() != int(supervisor):
            log.error("supervisor gone, stopping", supervisor_pid=int(supervisor))
            stop.set()
            return
        await asyncio.sleep(interval)
