"""ami_ingest settings, read from the environment once at start."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from runtime.config import CommonSettings, Port


class AmiIngestSettings(CommonSettings):
    ami_host: str = "127.0.0.1"
    ami_port: Port = 5038
    # No defaults: an Asterisk reachable with a well-known login is an open door (see check below).
    ami_username: str = ""
    ami_secret: SecretStr = SecretStr("")
    ami_auth: Literal["md5", "plain"] = "md5"
    # AMI over TLS (Asterisk manager.conf ``tlsenable=yes``, usually on port 5039). The server's
    # certificate is verified against AMI_TLS_CA (a PEM file; unset: the system's CAs) and must
    # name AMI_TLS_SERVER_NAME (unset: AMI_HOST).
    ami_tls: bool = False
    ami_tls_ca: Path | None = None
    ami_tls_server_name: str | None = None
    # Names this Asterisk server in leases and batches; defaults to AMI_HOST:AMI_PORT.
    ami_source_id: str | None = None
    ami_ping_interval_seconds: float = Field(default=20.0, gt=0)
    ami_ping_timeout_seconds: float = Field(default=5.0, gt=0)
    ingest_lease_ms: int = Field(default=5000, ge=500)
    ingest_poll_seconds: float = Field(default=1.0, gt=0)
    ingest_heartbeat_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _credentials_given(self) -> Self:
        if not self.ami_username or not self.ami_secret.get_secret_value():
            raise ValueError("AMI_USERNAME and AMI_SECRET must be set: there are no default AMI credentials")
        return self

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context for the AMI connection, or None for plain TCP."""
        if not self.ami_tls:
            return None
        return ssl.create_default_context(cafile=str(self.ami_tls_ca) if self.ami_tls_ca else None)

    @property
    def source_id(self) -> str:
        return self.ami_source_id or f"{self.ami_host}:{self.ami_port}"
