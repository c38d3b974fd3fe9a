"""The gateway's settings: the common ones (the topology, logging, OTel) plus its own.

Built once in ``gateway.__main__`` with ``runtime.config.load_settings(GatewaySettings)``; tests
construct it directly with keyword arguments.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr
from pydantic_settings import NoDecode

from runtime.config import SERVICE_NAMES, CommonSettings

__all__ = ["BACKEND_NAMES", "GatewaySettings"]

BACKEND_NAMES: tuple[str, ...] = SERVICE_NAMES
"""Every gRPC backend the gateway talks to (every service of the topology); /readyz checks each one."""


def _comma_list(value: Any) -> Any:
    return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


def _networks(entries: list[str]) -> list[str]:
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR range (no wildcards: name the proxies)") from None
    return entries


def _no_wildcard(origins: list[str]) -> list[str]:
    if any("*" in origin for origin in origins):
        raise ValueError("list exact origins; a wildcard would let any site read the API with a user's session")
    return origins


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
    gateway_allowed_hosts: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"]
    )
    """Host names the gateway answers to (``Host`` header; ``*.example.com`` for subdomains): the
    DNS-rebinding guard. Kubernetes: the ingress host names. /healthz, /readyz, /metrics are exempt."""
    gateway_cors_origins: Annotated[list[str], NoDecode, BeforeValidator(_comma_list), AfterValidator(_no_wildcard)] = (
        Field(default_factory=list)
    )
    """Exact origins (``https://ops.example.com``) allowed to call the API from their pages; none by default."""
    auth_session_secret: SecretStr | None = None
    """Signs the browser session cookies; every gateway replica needs the same one. Unset: a random
    secret per process (sessions end when it restarts)."""
    auth_session_hours: float = Field(default=12.0, gt=0.0, le=24.0 * 30)
    """How long a browser session lasts (never longer than the OIDC token it came from)."""
    gateway_cookie_secure: bool = True
    """Mark the session cookie ``Secure`` (browsers keep sending it to http://localhost and 127.0.0.1)."""
    auth_migrate_on_start: bool = True
    """The gateway applies the auth tables' migrations (API keys, audit log) before serving."""
    gateway_max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    """Largest request body (JSON, forms) the gateway takes: a bigger one is 413 the moment it passes
    the limit (at once from its Content-Length), never read whole. Uploads have their own limit
    (MEDIA_MAX_UPLOAD_BYTES)."""
    gateway_body_idle_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    """Longest wait for the next chunk of a request body before the request is 408."""
    gateway_body_timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    """Longest time a request body (JSON, forms) may take to arrive in full before the request is 408."""
    gateway_upload_timeout_seconds: float = Field(default=300.0, gt=0.0, le=3600.0)
    """The same for an upload's body (up to MEDIA_MAX_UPLOAD_BYTES)."""
    gateway_header_timeout_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    """A connection must send a complete request line and headers within this long after it opens or
    starts a request; otherwise it gets 408 and is closed (slowloris)."""
    gateway_keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    """How long an idle keep-alive connection stays open between requests."""
    gateway_max_connections_per_client: int = Field(default=64, ge=0)
    """Open connections one client may hold; the next one gets 429 with Retry-After and is closed.
    0: no cap. A client is the caller its credential names (API key, OIDC subject, bootstrap), else
    its address; through a trusted proxy each request in flight stands for a connection
    (gateway.http_server)."""
    gateway_max_streams_per_client: int = Field(default=8, ge=0)
    """Open Server-Sent-Event streams one client (as above) may hold; the next one is 429 with
    Retry-After. 0: no cap."""
    gateway_trusted_proxies: Annotated[list[str], NoDecode, BeforeValidator(_comma_list), AfterValidator(_networks)] = (
        Field(default_factory=list)
    )
    """Addresses or CIDR ranges of the proxies in front of the gateway (the ingress controller's
    pods). From them only, the client's address is read from ``X-Forwarded-For`` (and the scheme from
    ``X-Forwarded-Proto``), and their connections are not capped per address. Empty: those headers
    are ignored and every peer is a client."""
    gateway_retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    """The Retry-After of a 429 answered for a connection or stream cap."""
