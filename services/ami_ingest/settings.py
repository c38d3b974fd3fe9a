"""ami_ingest settings, read from the environment once at start."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from runtime.config import CommonSettings, Port


class AmiIngestSettings(CommonSettings):
    ami_host: str = "127.0.0.1"
    ami_port: Port = 5038
    ami_username: str = "switchboard"
    ami_secret: SecretStr = SecretStr("switchboard")
    ami_auth: Literal["md5", "plain"] = "md5"
    # Names this Asterisk server in leases and batches; defaults to AMI_HOST:AMI_PORT.
    ami_source_id: str | None = None
    ami_ping_interval_seconds: float = Field(default=20.0, gt=0)
    ami_ping_timeout_seconds: float = Field(default=5.0, gt=0)
    ingest_lease_ms: int = Field(default=5000, ge=500)
    ingest_poll_seconds: float = Field(default=1.0, gt=0)
    ingest_heartbeat_seconds: float = Field(default=5.0, gt=0)

    @property
    def source_id(self) -> str:
        return self.ami_source_id or f"{self.ami_host}:{self.ami_port}"
