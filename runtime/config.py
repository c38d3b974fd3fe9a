"""Configuration from environment variables: one frozen settings object per process.

Every service subclasses :class:`CommonSettings` with its own knobs and builds it once, in its
entry point, with :func:`load_settings`::

    class StatusSettings(CommonSettings):
        snapshot_ttl_seconds: int = 30          # read from SNAPSHOT_TTL_SECONDS

    settings = load_settings(StatusSettings)

Field names are the lower-case spelling of the environment variable (``redis_url`` is read
from ``REDIS_URL``). A bad value never starts the process: :func:`load_settings` prints one
line to stderr, such as ``config error: REDIS_URL: must be a redis:// URL (got 'http://x')``,
and exits with status 2. Passwords inside URLs are masked in that line.

Where every process listens and dials its peers is defined once, in :class:`Topology` (which
every settings class inherits): one ``<SERVICE>_ADDR`` per gRPC service, the gateway's host and
port. ``make run`` (scripts/local_plan.py), the gateway and the services all read it; a new
service adds its address field there.

``SECRETS_DIR`` names a directory of files, one per variable (``DATABASE_URL``, ``AMI_SECRET``):
a Kubernetes Secret mounted as a volume. A file is read where the environment does not set the
variable, so credentials never have to be environment variables; a missing directory is skipped.

``METRICS_PORT=0`` (the default) serves ``/metrics`` on a free port the OS picks and logs it
as ``metrics listening``, so several processes on one machine never collide; set a fixed port
where a scraper must find it (Kubernetes). ``METRICS_PORT=-1`` turns the endpoint off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.redaction import redact

__all__ = [
    "Address",
    "CommonSettings",
    "Port",
    "Topology",
    "default_service_addresses",
    "format_validation_error",
    "load_settings",
    "normalize_database_url",
    "parse_address",
]


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]


def _check_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port 1-65535")
    return value


def _check_metrics_port(value: int) -> int:
    if not -1 <= value <= 65535:
        raise ValueError("must be a TCP port 1-65535, 0 for a free port or -1 for off")
    return value


def parse_address(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:50051`` for IPv6) into its parts, or raise ValueError.

    The gRPC target forms ``dns:///host:port`` and ``dns://DNS-SERVER/host:port`` are accepted
    too (clients dial them as they are, see ``runtime.grpc_client``).
    """
    text = value.strip()
    if text.startswith("dns:"):
        text = text.removeprefix("dns:")
        if text.startswith("//"):
            _, slash, text = text[2:].partition("/")
            if not slash:
                raise ValueError("must be host:port or dns://[dns-server]/host:port")
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise ValueError("must be host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit():
        raise ValueError("port must be a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    if not host or any(c.isspace() for c in host):
        raise ValueError("must be host:port")
    return host, port


def _empty_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _check_address(value: str) -> str:
    parse_address(value)
    return value.strip()


def _check_redis_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// URL needs a socket path")
    else:
        if not parts.hostname:
            raise ValueError("redis URL needs a host")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("redis URL has an invalid port") from None
        if port is not None and not 1 <= port <= 65535:
            raise ValueError("redis URL has an invalid port")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError("redis URL database must be a number")
    return value.strip()


_DB_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def normalize_database_url(value: str) -> str:
    """Rewrite a database URL to its async SQLAlchemy driver (postgres:// → postgresql+asyncpg://)."""
    scheme, sep, rest = value.strip().partition("://")
    if not sep or scheme.lower() not in _DB_SCHEMES:
        raise ValueError("must be a postgresql:// or sqlite:// URL")
    return f"{_DB_SCHEMES[scheme.lower()]}://{rest}"


TRACES_EXPORTERS = ("otlp", "console", "none")


def _check_traces_exporter(value: str) -> str:
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(TRACES_EXPORTERS))
    if unknown:
        raise ValueError(f"unknown exporter {', '.join(unknown)} (use {', '.join(TRACES_EXPORTERS)})")
    return ",".join(names) or "none"


def _check_database_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return normalize_database_url(value)


Port = Annotated[int, AfterValidator(_check_port)]
OtlpProtocol = Literal["grpc", "http/protobuf"]
Address = Annotated[str, AfterValidator(_check_address)]
RedisUrl = Annotated[str, AfterValidator(_check_redis_url)]
MetricsPort = Annotated[int, AfterValidator(_check_metrics_port)]


class Topology(BaseSettings):
    """Every gRPC service's address and the gateway's: where each listens and where the others
    dial it. Each ``<name>_addr`` field is one service (``STATUS_ADDR`` …); :data:`SERVICE_NAMES`
    is derived from them, so adding a service here is adding one field."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

    status_addr: Address = "127.0.0.1:50051"
    media_addr: Address = "127.0.0.1:50052"
    notify_addr: Address = "127.0.0.1:50053"
    ami_ingest_addr: Address = "127.0.0.1:50054"
    queue_admin_addr: Address = "127.0.0.1:50055"
    # Where a gRPC server listens, when that differs from the address its clients dial
    # (Kubernetes: clients dial "status:50051", the pod listens on 0.0.0.0:50051).
    grpc_bind_host: str | None = None
    gateway_host: str = "127.0.0.1"
    gateway_port: Port = 8080

    def service_addresses(self) -> dict[str, str]:
        """Service name (``"status"``, ``"queue_admin"`` …) → its gRPC address."""
        return {name: str(getattr(self, f"{name}_addr")) for name in SERVICE_NAMES}


SERVICE_NAMES: tuple[str, ...] = tuple(
    name.removesuffix("_addr") for name in Topology.model_fields if name.endswith("_addr")
)
"""Every gRPC service of the suite, in the order of :class:`Topology`'s fields."""


def default_service_addresses() -> dict[str, str]:
    """``STATUS_ADDR`` … → the default address, for every service (what ``make run`` uses)."""
    return {f"{name.upper()}_ADDR": str(Topology.model_fields[f"{name}_addr"].default) for name in SERVICE_NAMES}


class CommonSettings(Topology):
    """The settings every Switchboard process reads. Subclass it for a service's own knobs."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

    redis_url: RedisUrl = "redis://127.0.0.1:6379/0"
    database_url: Annotated[str | None, AfterValidator(_check_database_url)] = None
    data_dir: Path = Path(".data")
    log_level: LogLevel = "INFO"
    log_format: Literal["json", "console"] = "json"
    # Tracing: the standard OpenTelemetry variables (runtime.trace_export says how each is used).
    otel_sdk_disabled: bool = False
    otel_traces_exporter: Annotated[str, AfterValidator(_check_traces_exporter)] = "otlp"
    otel_exporter_otlp_endpoint: Annotated[str | None, BeforeValidator(_empty_is_none)] = None
    otel_exporter_otlp_traces_endpoint: Annotated[str | None, BeforeValidator(_empty_is_none)] = None
    otel_exporter_otlp_protocol: OtlpProtocol = "grpc"
    otel_exporter_otlp_traces_protocol: Annotated[OtlpProtocol | None, BeforeValidator(_empty_is_none)] = None
    otel_service_name: str | None = None
    # Background loops (polls, claims, leases, probes) begin no trace unless this is set.
    trace_background: bool = False
    trace_flush_seconds: float = Field(default=2.0, ge=0.0, le=60.0)
    """On exit, how long the process may wait for its last spans to reach the collector, after
    its drain. Bounded: a slow or unreachable collector never holds the exit longer."""
    # Set by the image (build args VERSION, GIT_COMMIT) and the deployment; on every span's resource.
    service_version: str | None = None
    service_revision: str | None = None
    deployment_environment: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: MetricsPort = 0
    status_stale_after_seconds: float = Field(default=15.0, gt=0.0, le=3600.0)
    """Status reads say ``stale`` when the ingest has not written for longer than this; the
    status service and the gateway's mirror both judge by it."""
    shutdown_grace_seconds: float = Field(default=4.0, ge=0.0, le=4.5)
    # gRPC services only: serve with this many processes on one port (SO_REUSEPORT), for hosts
    # where one Python process is the ceiling; see runtime/multiprocess.py. Kubernetes: use replicas.
    grpc_processes: int = Field(default=1, ge=1, le=64)
    # gRPC servers close each client connection (gracefully: a GOAWAY, open streams finish) after
    # this long, so clients resolve the name again and spread over replicas added since; 0 = never.
    grpc_max_connection_age_seconds: float = Field(default=30.0, ge=0.0, le=86_400.0)
    # Calls one gRPC server runs at once (long streams included: Ingest, every watch); the next is
    # refused at once with RESOURCE_EXHAUSTED, which clients retry with backoff, and the refusal is
    # counted and logged (runtime.call_cap). Without a cap calls
    # queue in gRPC core, and once more than 1,000 wait for the Python server to take them
    # (grpc.server.max_pending_requests) core kills the newest with CANCELLED before any handler or
    # log line sees them: 2,000 concurrent EnqueueJob gave 93–182 such CANCELLED. 0 = no cap.
    grpc_max_concurrent_rpcs: int = Field(default=800, ge=0, le=1_000_000)
    health_check_interval_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    # Shared by the media service and the gateway (which refuses a larger upload before streaming it).
    media_max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    # Authentication (runtime/auth): every process verifies callers, every internal client
    # presents a credential. Tokens are SecretStr so a repr or a log line never shows them.
    auth_bootstrap_token: Annotated[SecretStr | None, BeforeValidator(_empty_is_none)] = None
    auth_internal_token: Annotated[SecretStr | None, BeforeValidator(_empty_is_none)] = None
    auth_key_cache_seconds: float = Field(default=5.0, ge=0.0, le=300.0)
    # Where the API keys and the audit log live (runtime/auth/store.py): one database every process
    # and the gateway share. Unset: DATABASE_URL (one machine: the one database of make run).
    auth_database_url: Annotated[str | None, AfterValidator(_check_database_url)] = None
    auth_jwks_url: Annotated[str | None, BeforeValidator(_empty_is_none)] = None
    auth_jwt_issuer: Annotated[str | None, BeforeValidator(_empty_is_none)] = None
    auth_jwt_audience: Annotated[str | None, BeforeValidator(_empty_is_none)] = None
    auth_jwt_scope_claim: str = "scope"
    # gRPC over TLS with client certificates: all three set, or none (plaintext).
    grpc_tls_cert: Annotated[Path | None, BeforeValidator(_empty_is_none)] = None
    grpc_tls_key: Annotated[Path | None, BeforeValidator(_empty_is_none)] = None
    grpc_tls_ca: Annotated[Path | None, BeforeValidator(_empty_is_none)] = None
    # A plaintext port serving grpc.health.v1 only, for probes that cannot present a client
    # certificate (Kubernetes' grpc: probe) while the service port requires one.
    grpc_health_port: Annotated[Port | None, BeforeValidator(_empty_is_none)] = None

    @model_validator(mode="after")
    def _check_auth_and_tls(self) -> CommonSettings:
        tls = (self.grpc_tls_cert, self.grpc_tls_key, self.grpc_tls_ca)
        if any(v is not None for v in tls) and not all(v is not None for v in tls):
            raise ValueError("GRPC_TLS_CERT, GRPC_TLS_KEY and GRPC_TLS_CA: set all three or none")
        if self.auth_jwks_url and not (self.auth_jwt_issuer and self.auth_jwt_audience):
            raise ValueError("AUTH_JWKS_URL needs AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE")
        return self

    @property
    def auth_store_url(self) -> str:
        """AUTH_DATABASE_URL for SQLAlchemy's async engine, else :attr:`async_database_url`."""
        return self.auth_database_url or self.async_database_url

    @property
    def async_database_url(self) -> str:
        """DATABASE_URL for SQLAlchemy's async engine; a SQLite file under DATA_DIR when unset."""
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'switchboard.db').resolve()}"


def _mask(value: Any) -> str:
    return redact(str(value))


def _env_name(settings_cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "settings"
    field = str(loc[0])
    info = settings_cls.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias.upper()
    prefix = str(settings_cls.model_config.get("env_prefix") or "")
    return f"{prefix}{field}".upper()


def format_validation_error(settings_cls: type[BaseSettings], error: ValidationError) -> str:
    """One human line naming the first bad variable, what is wrong and the value seen."""
    errors = error.errors()
    first = errors[0]
    name = _env_name(settings_cls, tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    line = f"config error: {name}: {message}"
    if first.get("type") != "missing" and "input" in first:
        line += f" (got {_mask(first['input'])!r})"
    others = sorted({_env_name(settings_cls, tuple(e["loc"])) for e in errors[1:]} - {name})
    if others:
        line += f" [also invalid: {', '.join(others)}]"
    return line


SettingsT = TypeVar("SettingsT", bound=BaseSettings)
_loaded: dict[type[BaseSettings], BaseSettings] = {}


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """Build ``settings_cls`` from the environment once per process; exit 2 on a bad value."""
    cached = _loaded.get(settings_cls)
    if cached is not None:
        return cast(SettingsT, cached)
    # A process that needs no secret has nothing mounted there (the gateway): nothing to read.
    secrets_dir = os.environ.get("SECRETS_DIR")
    if secrets_dir and not Path(secrets_dir).is_dir():
        secrets_dir = None
    try:
        settings = settings_cls(_secrets_dir=secrets_dir) if secrets_dir else settings_cls()
    except ValidationError as error:
        print(format_validation_error(settings_cls, error), file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    _loaded[settings_cls] = settings
    return settings
