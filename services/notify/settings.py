"""Notify service and worker settings, read from the environment once at start.

Providers are configured by their variables (``SMTP_*``, ``TELEGRAM_*``, ``VAPID_*``, ``SMS_*``);
a channel whose provider is not configured refuses sends with FAILED_PRECONDITION instead of
queueing what can never be delivered. ``make run`` configures all five against local servers.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from runtime.config import CommonSettings
from services.notify.domain.channels import Channel


class NotifySettings(CommonSettings):
    notify_migrate_on_start: bool = True
    """Apply the Alembic migrations before serving."""
    notify_concurrency: int = Field(default=10, ge=1, le=1000)
    """Deliveries in flight per worker of the ``notifications`` queue."""
    notify_telegram_concurrency: int = Field(default=30, ge=1, le=1000)
    notify_attempts: int = Field(default=5, ge=1, le=20)
    """Attempts of every channel, unless ``NOTIFY_<CHANNEL>_ATTEMPTS`` says otherwise."""
    notify_email_attempts: int | None = Field(default=None, ge=1, le=20)
    notify_telegram_attempts: int | None = Field(default=None, ge=1, le=20)
    notify_browser_attempts: int | None = Field(default=None, ge=1, le=20)
    notify_database_attempts: int | None = Field(default=None, ge=1, le=20)
    notify_sms_attempts: int | None = Field(default=None, ge=1, le=20)
    notify_backoff_base_s: float = Field(default=2.0, ge=0)
    notify_backoff_cap_s: float = Field(default=600.0, ge=0)
    notify_lease_s: float = Field(default=5.0, gt=0)
    notify_provider_timeout_s: float = Field(default=10.0, gt=0, le=120)
    """A provider that does not answer within this is cut off; the attempt is a transient failure."""
    notify_spool_path: Path | None = None
    """SQLite spool for jobs queued while Redis is unreachable; default ``DATA_DIR/notify-spool.db``."""

    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_from: str = "switchboard@localhost"
    smtp_tls_ca_file: Path | None = None
    """CA bundle that signs the SMTP server's certificate (default: the system's)."""

    telegram_bot_token: str = ""
    telegram_api_url: str = "https://api.telegram.org"
    telegram_rate_per_second: int = Field(default=30, ge=1, le=1000)
    telegram_chat_rate: str = "1/1s"
    """Per chat, in ``RateLimit.parse`` form."""
    telegram_group_rate: str = "20/60s"
    """Per group chat (negative chat id), on top of the per-chat limit."""
    telegram_send_margin_ms: int = Field(default=0, ge=0, le=5000)
    """Added to the per-chat and per-group windows at the send gate. The gate counts each send from
    its answer, so sends it admits a window apart arrive at least a window apart: a margin is only
    for a provider whose clock runs faster than ours."""
    telegram_bot_margin_ms: int = Field(default=0, ge=0, le=1000)
    """The same for the bot-wide window (it costs throughput every second: 30 per 1.01 s is 29.7/s)."""
    telegram_floor_ms: int = Field(default=2000, ge=10, le=120_000)
    """How long a killed worker's Telegram send keeps the next one waiting (the gate sends one at a
    time). A live worker keeps its send's floor until the answer is in or ``NOTIFY_PROVIDER_TIMEOUT_S``
    cut the request off, so a slow answer never lets the next send start during a 429's pause."""

    vapid_private_key: str = ""
    """Base64url raw key or PEM; ``make run`` generates one into ``DATA_DIR`` when unset."""
    vapid_subject: str = "mailto:ops@localhost"

    sms_api_url: str = ""
    sms_account_sid: str = ""
    sms_auth_token: str = ""
    sms_from: str = ""
    sms_status_callback_url: str = ""
    """Where the provider posts delivery status (the gateway's ``/api/notifications/sms/status``)."""

    @property
    def spool_path(self) -> Path:
        return self.notify_spool_path or self.data_dir / "notify-spool.db"

    def attempts_for(self, channel: Channel) -> int:
        override: int | None = getattr(self, f"notify_{channel.value}_attempts")
        return override or self.notify_attempts

    def configured(self, channel: Channel) -> bool:
        """Whether the channel's provider is configured (in-app needs none)."""
        return {
            Channel.EMAIL: bool(self.smtp_host),
            Channel.TELEGRAM: bool(self.telegram_bot_token),
            Channel.BROWSER: bool(self.vapid_private_key),
            Channel.DATABASE: True,
            Channel.SMS: bool(self.sms_api_url and self.sms_account_sid),
        }[channel]

    def worker_environment(self) -> dict[str, str]:
        """The variables that rebuild these settings in a worker process (tests, benchmarks)."""
        out = {"REDIS_URL": self.redis_url, "DATA_DIR": str(self.data_dir)}
        if self.database_url:
            out["DATABASE_URL"] = self.database_url
        for name, value in self.model_dump().items():
            if name.split("_")[0] in ("notify", "smtp", "telegram", "vapid", "sms") and value not in (None, ""):
                out[name.upper()] = str(value)
        return out
