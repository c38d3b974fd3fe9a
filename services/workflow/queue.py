"""The ``workflow`` queue declaration: the generic job types in a few lines."""

from __future__ import annotations

from runtime.queue import QueueSpec, RateLimit, Retention
from runtime.retry import RetryPolicy
from services.workflow.jobs import heavy_workflow_execution, statistics_aggregation, user_variables_update
from services.workflow.settings import WorkflowSettings

QUEUE_NAME = "workflow"
FUNCTIONS = (heavy_workflow_execution, user_variables_update, statistics_aggregation)


def workflow_queue(settings: WorkflowSettings | None = None) -> QueueSpec:
    s = settings or WorkflowSettings()
    return QueueSpec(
        name=QUEUE_NAME,
        functions=FUNCTIONS,
        concurrency=s.workflow_concurrency,
        attempts=s.workflow_attempts,
        backoff=RetryPolicy(
            attempts=s.workflow_attempts, base=s.workflow_backoff_base_s, cap=s.workflow_backoff_cap_s, jitter=0.5
        ),
        job_timeout_s=s.workflow_job_timeout_s,
        retention=Retention(
            completed=s.workflow_keep_completed, failed=s.workflow_keep_failed, max_age_s=s.workflow_max_age_s
        ),
        rate_limit=RateLimit.parse(s.workflow_rate_limit),
        key_rate_limit=RateLimit.parse(s.workflow_key_rate_limit),
        lease_s=s.workflow_lease_s,
        shutdown_grace_s=s.workflow_shutdown_grace_s,
    )
