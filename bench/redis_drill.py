"""Redis outage drills through the gateway: no acknowledged job may be lost.

Two drills, each on its own Redis (AOF, ``appendfsync always``, as ``make run`` starts it), with
queue_admin (and its disk spool), one workflow worker and the gateway as real processes:

1. ``kill -9`` of Redis while ``JOBS`` jobs of 300 ms are enqueued at ``RATE``/s through
   ``POST /api/queues/workflow/jobs``; Redis restarts from its AOF ``DOWN_S`` later.
2. ``CLIENT PAUSE`` of Redis for 8 s during the same load: every enqueue must be answered
   within the gateway's 5 s deadline (from the spool while Redis stalls).

Each prints accepted (200 with a job id), refused (any other answer, e.g. 503 while nothing
could take the job), run (accepted jobs that completed) and lost (accepted, never completed):
lost must be 0. ``python -m bench.redis_drill`` runs both; ``make bench`` adds the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

from devsupport.auth import AUTH_HEADERS
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from runtime.queue import JobState, QueueAdmin
from services.workflow.queue import workflow_queue
from services.workflow.settings import WorkflowSettings

JOBS = 1000
RATE = 50.0
JOB_MS = 300
DISRUPT_AT_S = 5.0
DOWN_S = 3.0
PAUSE_MS = 8000
DEADLINE_S = 5.0
SETTLE_S = 180.0


@dataclass
class Tally:
    accepted: list[str] = field(default_factory=list)
    spooled: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    late: int = 0
    """Answers (of any kind) that took longer than the deadline."""
    late_before: int = 0
    """Of those, enqueues sent before the disruption: what the machine's load alone costs."""
    slowest_s: float = 0.0

    def refuse(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1


async def _enqueue_all(base_url: str, disrupt: Callable[[], Awaitable[None]]) -> Tally:
    tally = Tally()
    url = f"{base_url}/api/queues/workflow/jobs"
    body = {"name": "heavy_workflow_execution", "data": {"duration_ms": JOB_MS}}
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=DEADLINE_S + 5, limits=limits, headers=AUTH_HEADERS) as http:

        async def one() -> None:
            started = time.perf_counter()
            before = started - start < DISRUPT_AT_S
            try:
                reply = await http.post(url, json=body)
            except httpx.HTTPError as error:
                tally.refuse(type(error).__name__)
                return
            finally:
                took = time.perf_counter() - started
                tally.slowest_s = max(tally.slowest_s, took)
                tally.late += took > DEADLINE_S
                tally.late_before += before and took > DEADLINE_S
            if reply.status_code == 200:
                data = reply.json()["data"]
                tally.accepted.append(data["jobId"])
                tally.spooled += bool(data.get("spooled"))
            else:
                tally.refuse(str(reply.status_code))

        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        disruption = asyncio.create_task(_after(DISRUPT_AT_S, disrupt))
        for i in range(JOBS):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        await disruption
    return tally


async def _after(seconds: float, action: Callable[[], Awaitable[None]]) -> None:
    await asyncio.sleep(seconds)
    await action()


async def _count_run(redis_url: str, job_ids: list[str]) -> tuple[int, dict[str, int]]:
    """Wait (bounded) until every accepted job finished; how many completed, and every state seen."""
    spec = workflow_queue(WorkflowSettings(redis_url=redis_url))
    redis = Redis.from_url(redis_url)
    admin = QueueAdmin(spec, redis)
    deadline = time.monotonic() + SETTLE_S
    try:
        while True:
            states: dict[str, int] = {}
            for job_id in job_ids:
                try:
                    state = str((await admin.job(job_id)).state.value)
                except Exception as error:
                    state = type(error).__name__
                states[state] = states.get(state, 0) + 1
            done = states.get(JobState.COMPLETED.value, 0)
            if done == len(job_ids) or time.monotonic() > deadline:
                return done, states
            await asyncio.sleep(1.0)
    finally:
        await redis.aclose()


def _drill(name: str, disrupt: Callable[[RedisServer], Awaitable[None]]) -> tuple[Tally, int, dict[str, int]]:
    data_dir = tempfile.mkdtemp(prefix=f"sb-drill-{name}-")
    admin_addr = f"127.0.0.1:{free_port()}"
    gateway_port = free_port()
    with RedisServer(appendfsync="always") as redis_server:
        common = {
            "REDIS_URL": redis_server.url,
            "QUEUE_ADMIN_ADDR": admin_addr,
            "DATA_DIR": data_dir,
            "LOG_LEVEL": "WARNING",
            "METRICS_PORT": "-1",
            "WORKFLOW_KEEP_COMPLETED": str(10 * JOBS),  # every job of the drill stays countable
        }
        admin = ServiceProcess.module("services.queue_admin", env=common)
        worker = ServiceProcess.module("services.workflow.worker", env=common)
        # One drill process stands for many clients (up to 400 connections): no per-client cap.
        gateway_env = {**common, "GATEWAY_PORT": str(gateway_port), "GATEWAY_MAX_CONNECTIONS_PER_CLIENT": "0"}
        gateway = ServiceProcess.module("gateway", env=gateway_env)
        with admin, worker, gateway:
            admin.wait_serving(admin_addr, timeout=60)
            gateway.wait_http(f"http://127.0.0.1:{gateway_port}/healthz", timeout=60)
            base_url = f"http://127.0.0.1:{gateway_port}"
            _wait_declared(base_url)
            tally = asyncio.run(_enqueue_all(base_url, lambda: disrupt(redis_server)))
            run, states = asyncio.run(_count_run(redis_server.url, tally.accepted))
    return tally, run, states


def _wait_declared(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/api/queues/workflow", timeout=5, headers=AUTH_HEADERS).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError("the workflow queue was never declared (did the worker start?)")


async def _kill_and_restart(server: RedisServer) -> None:
    server.kill()
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(server.start)  # from the AOF


async def _pause(server: RedisServer) -> None:
    client = Redis.from_url(server.url)
    try:
        await client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
    finally:
        await client.aclose()


def _rows(drill: str, tally: Tally, run: int, states: dict[str, int]) -> list[dict[str, Any]]:
    accepted = len(tally.accepted)
    seen = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    lost = accepted - run
    refused = ", ".join(f"{n}× {why}" for why, n in sorted(tally.refused.items())) or "none"
    late = tally.late
    return [
        row(f"{drill}: acknowledged jobs lost", lost, f"jobs (accepted {accepted}, run {run})", "== 0", lost == 0),
        row(f"{drill}: answers after the {DEADLINE_S:g} s deadline", late, "enqueues", "== 0", late == 0),
        row(f"  {drill}: accepted jobs by final state", run, f"completed ({seen})", "info", True),
        row(f"  {drill}: accepted", accepted, f"of {JOBS} ({tally.spooled} via the spool)", "info", True),
        row(f"  {drill}: refused", sum(tally.refused.values()), f"answers ({refused})", "info", True),
        row(f"  {drill}: slowest enqueue answer", tally.slowest_s * 1000, "ms", "info", True),
        row(
            f"  {drill}: late answers to enqueues sent before the disruption",
            tally.late_before,
            "enqueues (load alone)",
            "info",
            True,
        ),
    ]


def row(name: str, value: float, unit: str, target: str, met: bool) -> dict[str, Any]:
    return {"name": name, "value": round(float(value), 2), "unit": unit, "target": target, "met": bool(met)}


def run() -> list[dict[str, Any]]:
    rates = f"{JOBS} jobs at {RATE:g}/s via the gateway"
    killed = _drill("kill", _kill_and_restart)
    paused = _drill("pause", _pause)
    return [
        *_rows(f"redis kill -9 + AOF restart ({DOWN_S:g} s down), {rates}", *killed),
        *_rows(f"redis CLIENT PAUSE {PAUSE_MS / 1000:g} s, {rates}", *paused),
    ]


if __name__ == "__main__":
    for result in run():
        mark = "ok  " if result["met"] else "MISS"
        print(f"{mark} {result['name']:<90} {result['value']:>8} {result['unit']}")
