"""Entry point: ``python -m services.workflow.worker`` serves the workflow queue until SIGTERM."""

from __future__ import annotations

from runtime.config import load_settings
from runtime.queue.runner import run_worker
from services.workflow.queue import workflow_queue
from services.workflow.settings import WorkflowSettings


def main() -> None:
    settings = load_settings(WorkflowSettings)
    run_worker("workflow_worker", settings, workflow_queue(settings))


if __name__ == "__main__":
    main()
