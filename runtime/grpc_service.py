"""What a service hands to the gRPC bootstrap (:mod:`runtime.grpc_server`), and the drain event.

Long-lived server streams (``Watch``) should end themselves when :func:`shutdown_event` is set,
instead of holding the drain until the grace runs out::

    stop = shutdown_event()
    while not stop.is_set():
        change = await next_change_or(stop)   # e.g. asyncio.wait on both
        yield change
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import grpc.aio

from runtime.auth.scopes import Scope
from runtime.config import parse_address
from runtime.health import HealthCheck
from runtime.supervision import TaskSupervisor

__all__ = ["GrpcService", "ShutdownHook", "shutdown_event"]

ShutdownHook = Callable[[], Awaitable[object]]

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
    tasks: TaskSupervisor | None = None
    """The service's long-lived background tasks: one that dies turns health, ``liveness`` included,
    NOT_SERVING (:mod:`runtime.supervision`)."""
    bind_host: str | None = None
    """Listen on this host with the port of ``address`` (``GRPC_BIND_HOST``); None: ``address`` itself."""

    @property
    def listen_address(self) -> str:
        if self.bind_host is None:
            return self.address
        _, port = parse_address(self.address)
        host = f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host
        return f"{host}:{port}"
