"""Free loopback ports, and whether something listens on one.

A server in the test's own process binds a port the OS picks as it starts and is asked which
(:data:`ANY_LOOPBACK_PORT`, :func:`on_any_port`, :func:`bound_socket`): a number taken from
:func:`free_port` first is free only until someone else binds it, and on a loaded machine the
gap before the server binds (an app built, migrations run) is long enough for that to happen.
"""

from __future__ import annotations

import dataclasses
import socket
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The OS picks it (bind to port 0), so two calls in a row practically never collide; the
    port is free again the moment this returns, so another process may bind it first. For a
    child process that must be told its port; a server in this process binds port 0 instead.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together while choosing, so they differ)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((LOOPBACK, 0))
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
