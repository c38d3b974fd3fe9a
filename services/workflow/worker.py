"""Entry point: ``python -m services.workflow.worker`` serves the workflow queue until SIGTERM."""

from __future__ import annotations

from runtime.config import load_settings
from runtime.grpc_server import init_process
from runtime.queue.runner import run_worker
from services.workflow.queue import workflow_queue
from services.workflow.settings import WorkflowSettings


def main() -> None:
    settings = load_settings(WorkflowSettings)
    init_process("workflow_worker", settings)
    run_worker(workflow_queue(settings), settings.redis_url)


if __name__ == "__main__":
    main()
