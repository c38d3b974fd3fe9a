"""A tiny authoritative DNS server on loopback whose answers a test changes, like a headless Service's.

gRPC's resolver can be pointed at it with the target ``dns://127.0.0.1:PORT/NAME:GRPC_PORT``; a
test "scales up" by adding addresses (127.0.0.2, 127.0.0.3, ... are loopback too), as Kubernetes
adds a ready pod's IP to a headless Service's DNS name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Resolver(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        if request.q.qtype == QTYPE.A:
            with self.lock:
                addresses = list(self.records.get(name, ()))
            for address in addresses:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply


class LoopbackDns:
    """``set(name, addresses)`` changes what ``name`` resolves to; ``port`` is the UDP port."""

    def __init__(self) -> None:
        self._resolver = _Resolver()
        self._server = DNSServer(self._resolver, port=0, address="127.0.0.1", logger=DNSLogger(log="-all"))
        self.port: int = self._server.server.server_address[1]

    def set(self, name: str, addresses: Iterable[str]) -> None:
        with self._resolver.lock:
            self._resolver.records[name] = list(addresses)

    def target(self, name: str, port: int) -> str:
        """The gRPC target that resolves ``name`` through this server."""
        return f"dns://127.0.0.1:{self.port}/{name}:{port}"

    def __enter__(self) -> LoopbackDns:
        self._server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self._server.server.server_close()
