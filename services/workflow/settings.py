"""The workflow worker's settings: the shared ones (REDIS_URL, logging, metrics, OTel) plus the
queue's declaration from ``WORKFLOW_*`` variables, built once in the entry point."""

from __future__ import annotations

from pydantic import Field

from runtime.config import CommonSettings


class WorkflowSettings(CommonSettings):
    workflow_concurrency: int = Field(default=50, ge=1, le=10_000)
    workflow_attempts: int = Field(default=3, ge=1, le=100)
    workflow_backoff_base_s: float = Field(default=1.0, ge=0)
    workflow_backoff_cap_s: float = Field(default=60.0, ge=0)
    workflow_job_timeout_s: float = Field(default=300.0, gt=0)
    workflow_lease_s: float = Field(default=5.0, gt=0)
    workflow_shutdown_grace_s: float = Field(default=10.0, ge=0)
    workflow_rate_limit: str = ""
    """``"30/1s"`` = at most 30 starts in any second across all workers; empty = unlimited."""
    workflow_key_rate_limit: str = ""
    """Same format, applied per job ``rate_key``."""
    workflow_keep_completed: int = Field(default=100, ge=0)
    workflow_keep_failed: int = Field(default=1000, ge=0)
    workflow_max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0)

    def worker_environment(self) -> dict[str, str]:
        """The variables that rebuild these settings in a worker process (tests, benchmarks)."""
        queue = {k.upper(): str(v) for k, v in self.model_dump().items() if k.startswith("workflow_")}
        return {"REDIS_URL": self.redis_url, **queue}
