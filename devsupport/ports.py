"""Free loopback ports, and whether something listens on one.

A server in the test's own process binds a port the OS picks as it starts and is asked which
(:data:`ANY_LOOPBACK_PORT`, :func:`on_any_port`, :func:`bound_socket`): a number taken from
:func:`free_port` first is free only until someone else binds it, and on a loaded machine the
gap before the server binds (an app built, migrations run) is long enough for that to happen.

A port that must be chosen before its server starts (a child process told its address) is taken
from below the kernel's ephemeral range (``net.ipv4.ip_local_port_range``): the kernel gives
ports from that range to every outgoing connection and every bind to port 0, so a number chosen
inside it can be taken by any client's connection before the child binds it; below it, only
another caller choosing a number could take it.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import socket
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.grpc_service import GrpcService

LOOPBACK = "127.0.0.1"
ANY_LOOPBACK_PORT = f"{LOOPBACK}:0"
"""A gRPC listen address: the server binds a port the OS picks; ``GrpcServer.start`` returns it."""


def on_any_port(service: GrpcService) -> GrpcService:
    """``service`` listening on :data:`ANY_LOOPBACK_PORT` whatever its settings say."""
    return dataclasses.replace(service, address=ANY_LOOPBACK_PORT)


def bound_socket() -> socket.socket:
    """A TCP socket bound to a loopback port the OS picks, not yet listening: hand it to the
    server (uvicorn's ``serve(sockets=[...])``), which listens on it and closes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, 0))
    except OSError:
        sock.close()
        raise
    return sock


_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_CHOSEN_PORTS_SPAN = 10_000
_LOWEST_UNPRIVILEGED_PORT = 1024


def chosen_port_range(ephemeral_range_file: Path = _EPHEMERAL_RANGE_FILE) -> range | None:
    """Ports to choose from for a server that binds later: the 10,000 just below the kernel's
    ephemeral range, or above it; ``None`` when neither fits (or the range is unknown), and
    the OS picks instead."""
    try:
        low, high = (int(part) for part in ephemeral_range_file.read_text().split())
    except (OSError, ValueError):
        return None
    if low - _CHOSEN_PORTS_SPAN >= _LOWEST_UNPRIVILEGED_PORT:
        return range(low - _CHOSEN_PORTS_SPAN, low)
    if high + 1 + _CHOSEN_PORTS_SPAN <= 65536:
        return range(high + 1, high + 1 + _CHOSEN_PORTS_SPAN)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a server that binds it
    later (a child process told its address); a server in this process binds port 0 instead.

    The port is free again the moment this returns; it lies outside the kernel's ephemeral
    range where the machine allows (see the module docstring), so no outgoing connection takes it.
    """
    (port,) = free_ports(1)
    return port


def free_ports(count: int, candidates: range | None = None) -> list[int]:
    """``count`` distinct free ports (held open together while choosing, so they differ), tried
    from ``candidates`` (default :func:`chosen_port_range`) onwards from a random one, then
    picked by the OS."""
    pool = candidates if candidates is not None else chosen_port_range()
    start = random.randrange(len(pool)) if pool else 0
    tried = itertools.chain(pool[start:], pool[:start]) if pool else iter(())
    sockets: list[socket.socket] = []
    try:
        while len(sockets) < count:
            port = next(tried, 0)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                sock.close()
                if port == 0:
                    raise
                continue
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def is_listening(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """True when a TCP connect to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
