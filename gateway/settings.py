"""The gateway's settings: the common ones (the topology, logging, OTel) plus its own.

Built once in ``gateway.__main__`` with ``runtime.config.load_settings(GatewaySettings)``; tests
construct it directly with keyword arguments.
"""

from __future__ import annotations

from pydantic import Field

from runtime.config import SERVICE_NAMES, CommonSettings

__all__ = ["BACKEND_NAMES", "GatewaySettings"]

BACKEND_NAMES: tuple[str, ...] = SERVICE_NAMES
"""Every gRPC backend the gateway talks to (every service of the topology); /readyz checks each one."""


class GatewaySettings(CommonSettings):
    readiness_timeout_seconds: float = Field(default=1.0, gt=0.0, le=10.0)
    """Deadline of each backend health check behind /readyz (they run concurrently)."""
    rpc_timeout_seconds: float = Field(default=5.0, gt=0.0, le=60.0)
    """Deadline of every unary call the gateway makes to a backend."""
    notify_sinks_url: str = ""
    """``make run``'s local notify providers (``python -m services.notify.local``), whose log the
    /admin/notifications page shows; empty where real providers are used."""
    sse_ping_seconds: float = Field(default=15.0, gt=0.0, le=300.0)
    """Keep-alive comment interval on /api/queue-status/stream (keeps proxies from closing it)."""
    gateway_status_mirror: bool = True
    """Answer the status reads from a local mirror fed by one WatchSnapshot (see gateway.status_mirror);
    false: every read is a gRPC call to the status service."""
    gateway_mirror_freshness_max_age_seconds: float = Field(default=2.0, gt=0.0, le=60.0)
    """The mirror answers only while the watch's latest freshness event is younger than this (the
    status service sends one at least every STATUS_WATCH_HEARTBEAT_SECONDS, default 0.5 s)."""
