"""The multi-replica drill (``make drill``): kill -9 one replica of each process in turn; no accepted
job or notification is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from devsupport.redis_server import RedisServer
from scripts import drill

pytestmark = pytest.mark.slow


@pytest.mark.timeout(420)
def test_killing_one_replica_of_each_process_in_turn_loses_no_accepted_job_or_notification(tmp_path: Path) -> None:
    # Redis as `make run` starts it: append-only, fsync always (an acknowledged enqueue is on disk).
    server = RedisServer(data_dir=tmp_path / "redis", appendfsync="always")
    server.start()
    try:
        summary = drill.run(tmp_path, server.url, down_seconds=1.5, calm_seconds=1.0)
    finally:
        server.stop()

    assert summary["accepted_jobs"] > 0
    assert summary["lost_jobs"] == []
    assert summary["accepted_notifications"] > 0
    assert summary["undelivered_notifications"] == []
    # The standby took the lease over: the status service saw an ingest write again after the kill.
    assert summary["ingest_takeover_seconds"] is not None
    # After every failover both kinds of call answered again (errors only while a replica was down).
    assert summary["recovered_after_every_kill"]
    assert summary["reads"]["ok"] > 0
    assert summary["enqueues"]["ok"] == summary["accepted_jobs"]
    assert summary["notifications"]["ok"] == summary["accepted_notifications"]
    assert summary["passed"]
