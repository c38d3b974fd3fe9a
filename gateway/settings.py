"""The gateway's settings: the common ones (backend addresses, GATEWAY_PORT, logging, OTel) plus its own.

Built once in ``gateway.__main__`` with ``runtime.config.load_settings(GatewaySettings)``; tests
construct it directly with keyword arguments.
"""

from __future__ import annotations

from pydantic import Field

from runtime.config import Address, CommonSettings

__all__ = ["BACKEND_NAMES", "GatewaySettings"]

BACKEND_NAMES: tuple[str, ...] = ("status", "media", "notify", "ami_ingest", "queue_admin")
"""Every gRPC backend the gateway talks to; /readyz checks each one."""


class GatewaySettings(CommonSettings):
    gateway_host: str = "127.0.0.1"
    queue_admin_addr: Address = "127.0.0.1:50055"
    """The queue admin service (``python -m services.queue_admin``) behind /api/queues and /admin/queues."""
    readiness_timeout_seconds: float = Field(default=1.0, gt=0.0, le=10.0)
    """Deadline of each backend health check behind /readyz (they run concurrently)."""
    rpc_timeout_seconds: float = Field(default=5.0, gt=0.0, le=60.0)
    """Deadline of every unary call the gateway makes to a backend."""
    sse_ping_seconds: float = Field(default=15.0, gt=0.0, le=300.0)
    """Keep-alive comment interval on /api/queue-status/stream (keeps proxies from closing it)."""
    gateway_status_mirror: bool = True
    """Answer the status reads from a local mirror fed by one WatchSnapshot (see gateway.status_mirror);
    false: every read is a gRPC call to the status service."""
    gateway_mirror_freshness_max_age_seconds: float = Field(default=2.0, gt=0.0, le=60.0)
    """The mirror answers only while the watch's latest freshness event is younger than this (the
    status service sends one at least every STATUS_WATCH_HEARTBEAT_SECONDS, default 0.5 s)."""
    status_stale_after_seconds: float = Field(default=15.0, gt=0.0, le=3600.0)
    """The status service's staleness threshold (the same variable it reads): the mirror never answers
    a state this old, the status service does (with ``stale: true``)."""

    def backend_addresses(self) -> dict[str, str]:
        return {
            "status": self.status_addr,
            "media": self.media_addr,
            "notify": self.notify_addr,
            "ami_ingest": self.ami_ingest_addr,
            "queue_admin": self.queue_admin_addr,
        }
