"""The multi-replica drill (``make drill``): kill -9 one replica of each process in turn; no accepted
job, notification or upload is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import drill
from scripts.drill_takeover import takeover_line

pytestmark = pytest.mark.slow


@pytest.mark.timeout(420)
def test_killing_one_replica_of_each_process_in_turn_loses_nothing_accepted(tmp_path: Path) -> None:
    with drill.dependencies(tmp_path) as (redis_url, s3_url):
        summary = drill.run(tmp_path, redis_url, s3_url, down_seconds=1.5, calm_seconds=1.0)
    print(json.dumps(summary, indent=2))  # the figures, for `pytest -s`
    if summary["ingest_takeover"] is not None:
        print(takeover_line(summary["ingest_takeover"]))

    assert summary["accepted_jobs"] > 0
    assert summary["lost_jobs"] == []
    assert summary["accepted_notifications"] > 0
    assert summary["undelivered_notifications"] == []
    # Every accepted upload processed, copied to S3, and its original and variants in the bucket.
    assert summary["accepted_uploads"] > 0
    assert summary["unsynced_uploads"] == []
    assert summary["uploads_missing_from_the_bucket"] == []
    # The standby took the lease over: the status service saw an ingest write again after the kill.
    # How fast is printed beside the bound (lease + poll), not asserted: a wall-clock figure of
    # processes sharing two cores (see scripts/drill_takeover.py).
    assert summary["ingest_takeover"] is not None
    # Every kind of call kept answering through the surviving replicas, and once all were back.
    assert summary["answered_through_every_failover"]
    # Errors only during failover: none before the first kill or once every replica was back.
    assert summary["failed_outside_failover"] == {}
    assert summary["reads"]["ok"] > 0
    assert summary["enqueues"]["ok"] == summary["accepted_jobs"]
    assert summary["notifications"]["ok"] == summary["accepted_notifications"]
    assert summary["uploads"]["ok"] == summary["accepted_uploads"]
    assert summary["passed"]
