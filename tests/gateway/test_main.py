"""``python -m gateway`` as an operator runs it: env config, JSON logs, readiness, SIGTERM, bad config."""

from __future__ import annotations

import asyncio
import json
import signal

import httpx

from devsupport.auth import AUTH_HEADERS
from devsupport.ports import free_port
from devsupport.procs import SpawnService
from tests.gateway.harness import Backends
from tests.gateway.sse import events


async def test_runs_from_env_answers_and_stops_on_sigterm(spawn: SpawnService, backends: Backends) -> None:
    port = free_port()
    process = spawn(
        "gateway",
        env={"GATEWAY_PORT": str(port), **backends.env()},
    )
    base = f"http://127.0.0.1:{port}"
    # In a thread: the loopback backends live on this event loop and must keep answering.
    await asyncio.to_thread(process.wait_http, f"{base}/healthz")
    async with httpx.AsyncClient(base_url=base, timeout=2, headers=AUTH_HEADERS) as client:
        assert (await client.get("/readyz")).status_code == 200
        snapshot = await client.get("/api/queue-status/snapshot")
        assert snapshot.status_code == 200
        assert len(snapshot.json()["data"]["operators"]) == 3
        # An open SSE stream must not hold the shutdown: the drain ends it.
        async with client.stream("GET", "/api/queue-status/stream") as stream:
            assert (await anext(events(stream))).event == "snapshot"
            process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(process.wait_exit, 6) == 0, process.output()
    lines = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "gateway started" and line.get("service") == "gateway" for line in lines)


def test_bad_port_stops_with_one_line_naming_the_variable(spawn: SpawnService) -> None:
    process = spawn("gateway", env={"GATEWAY_PORT": "99999"})
    assert process.wait_exit(timeout=20) == 2
    assert process.stderr.strip().splitlines() == [
        "config error: GATEWAY_PORT: must be a TCP port 1-65535 (got '99999')"
    ], process.output()
