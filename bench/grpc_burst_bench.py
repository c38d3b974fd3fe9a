"""A burst of concurrent EnqueueJob calls on one channel against a real queue_admin process: every
call must get an answer that says what happened (OK, or RESOURCE_EXHAUSTED past
GRPC_MAX_CONCURRENT_RPCS), none a bare CANCELLED from gRPC core's pending-call queue.

The calls carry a 60 s deadline so that what is measured is the server's answer, not the
machine's speed (a loaded machine takes longer than the gateway's 5 s to work through 2,000).
"""

from __future__ import annotations

import asyncio
import collections
import os
import tempfile
import time
from typing import Any

import grpc
import grpc.aio
from redis.asyncio import Redis
from switchboard.queue.v1 import queue_pb2, queue_pb2_grpc

from devsupport.auth import aio_channel
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from runtime.queue.registry import declare
from services.workflow.queue import workflow_queue
from services.workflow.settings import WorkflowSettings

BURSTS = (2000, 4000)


async def _burst(redis_url: str, address: str, calls: int) -> tuple[collections.Counter[str], float]:
    redis = Redis.from_url(redis_url)
    await declare(redis, workflow_queue(WorkflowSettings(redis_url=redis_url)))
    await redis.aclose()
    codes: collections.Counter[str] = collections.Counter()
    async with aio_channel(address) as channel:
        stub = queue_pb2_grpc.QueueAdminStub(channel)
        await stub.ListQueues(queue_pb2.ListQueuesRequest(), timeout=30)
        request = queue_pb2.EnqueueJobRequest(queue="workflow", name="statistics_aggregation", data_json="{}")

        async def one() -> None:
            try:
                await stub.EnqueueJob(request, timeout=60)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as error:
                codes[error.code().name] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(calls)))
    return codes, time.perf_counter() - started


def run() -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with RedisServer() as redis_server:
        address = f"127.0.0.1:{free_port()}"
        env = {
            "REDIS_URL": redis_server.url,
            "QUEUE_ADMIN_ADDR": address,
            "DATA_DIR": tempfile.mkdtemp(prefix="sb-burst-"),
            "LOG_LEVEL": "WARNING",
            "METRICS_PORT": "-1",
        }
        with ServiceProcess.module("services.queue_admin", env=env) as queue_admin:
            queue_admin.wait_serving(address, timeout=60)
            for calls in BURSTS:
                codes, seconds = asyncio.run(_burst(redis_server.url, address, calls))
                unexplained = calls - codes["OK"] - codes["RESOURCE_EXHAUSTED"]
                answers = ", ".join(f"{count} {code}" for code, count in sorted(codes.items()))
                label = f"{calls} concurrent EnqueueJob ({answers}; {seconds:.1f} s, load {os.getloadavg()[0]:.1f})"
                results.append(
                    {
                        "name": f"calls answered neither OK nor RESOURCE_EXHAUSTED of {label}",
                        "value": unexplained,
                        "unit": "calls",
                        "target": "0",
                        "met": unexplained == 0,
                    }
                )
    return results


if __name__ == "__main__":
    for row in run():
        print(row)
