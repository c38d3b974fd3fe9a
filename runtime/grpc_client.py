"""Client channels to Switchboard's gRPC services, spread over every replica.

An ``*_ADDR`` setting is a gRPC target: ``host:port`` is dialled as ``dns:///host:port``, and any
target URI gRPC knows is taken as it is (``dns://DNS-SERVER/host:port``,
``ipv4:10.0.0.1:50051,10.0.0.2:50051``). Channels balance with ``round_robin`` over every address
the name resolves to. On Kubernetes the Services are headless, so a name resolves to every ready
pod and each client spreads its calls over all of them, instead of pinning one long-lived HTTP/2
connection to whichever pod a ClusterIP picked.

New pods are found when gRPC resolves the name again, which it does when a connection closes:
servers cap connection age (``GRPC_MAX_CONNECTION_AGE_SECONDS``, see ``runtime.grpc_server``), so
after a scale-up every client re-resolves, and connects to the new pods, within that age (plus
``RESOLVE_INTERVAL_MS`` at most). Streams already open stay where they are until they end.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar, cast

import grpc
import grpc.aio

ResponseT = TypeVar("ResponseT")

__all__ = ["CHANNEL_OPTIONS", "insecure_channel", "target"]

RESOLVE_INTERVAL_MS = 5000
"""Least time between two DNS resolutions of one channel (gRPC's default is 30 s)."""

MAX_RECONNECT_BACKOFF_MS = 5000
"""Cap of the reconnect backoff to an address that went away (gRPC's default is 120 s). round_robin
reconnects a lost address at once and backs off while it is down, so without a small cap a
replica restarted at the same address would be reached again only minutes later."""

CHANNEL_OPTIONS: tuple[tuple[str, str | int], ...] = (
    ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),
    ("grpc.dns_min_time_between_resolutions_ms", RESOLVE_INTERVAL_MS),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
)

_TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")


def target(address: str) -> str:
    """The gRPC target for an ``*_ADDR`` value (``host:port`` → ``dns:///host:port``)."""
    address = address.strip()
    return address if address.startswith(_TARGET_SCHEMES) else f"dns:///{address}"


def insecure_channel(address: str, options: Sequence[tuple[str, str | int]] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to ``address`` with round-robin over every resolved address."""
    return grpc.aio.insecure_channel(target(address), options=[*CHANNEL_OPTIONS, *options])


async def read_message(
    call: grpc.aio.UnaryStreamCall[Any, ResponseT] | grpc.aio.StreamStreamCall[Any, ResponseT],
) -> ResponseT | None:
    """The stream's next message, or None once it ended (``grpc.aio.EOF``, which the type
    stubs can only describe as ``object``)."""
    message = await call.read()
    return None if message is grpc.aio.EOF else cast(ResponseT, message)
