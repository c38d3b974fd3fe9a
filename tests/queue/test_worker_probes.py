"""A worker process answers Kubernetes probes on its /metrics port: liveness never follows Redis."""

from __future__ import annotations

import urllib.request

from devsupport.ports import free_port
from devsupport.procs import SpawnService
from devsupport.redis_server import RedisServer
from tests.support.http_probes import probe, wait_for


def test_a_redis_outage_makes_the_worker_unready_but_still_live(
    spawn: SpawnService, redis_server: RedisServer, redis_url: str
) -> None:
    port = free_port()
    worker = spawn("services.workflow.worker", env={"REDIS_URL": redis_url, "METRICS_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz", 200)
        assert probe(f"{base}/healthz") == (200, {"ok": True, "reason": None})
        redis_server.stop()
        body = wait_for(f"{base}/readyz", 503)
        assert body["reason"].startswith("redis: ")
        assert probe(f"{base}/healthz")[0] == 200
        redis_server.start()
        wait_for(f"{base}/readyz", 200)
        with urllib.request.urlopen(f"{base}/metrics", timeout=2) as response:
            assert b"queue_jobs_by_state" in response.read()
    finally:
        redis_server.start()
    assert worker.poll() is None, worker.output()
