"""A supervised background task that dies turns liveness NOT_SERVING; stopping one on purpose does not."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import grpc
import grpc.aio
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import ANY_LOOPBACK_PORT
from devsupport.waiting import wait_until
from runtime.background import BackgroundTask
from runtime.grpc_server import GrpcServer, GrpcService
from runtime.health import LIVENESS_SERVICE
from runtime.supervision import TaskSupervisor

SERVICE = "test.runtime.v1.Supervised"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def no_methods(server: grpc.aio.Server) -> None:
    """The service's own methods do not matter here: health is served beside them."""


def server_with(tasks: TaskSupervisor) -> GrpcServer:
    service = GrpcService(
        name="supervised", address=ANY_LOOPBACK_PORT, register=no_methods, service_names=[SERVICE], tasks=tasks
    )
    # A long interval: the death must be published at once, not at the next round of checks.
    return GrpcServer(service, authenticator=authenticator_for_tests(), health_interval_seconds=600)


async def statuses(health: health_pb2_grpc.HealthStub) -> dict[str, int]:
    names = (LIVENESS_SERVICE, "", SERVICE)
    replies = [await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5) for name in names]
    return {name: int(reply.status) for name, reply in zip(names, replies, strict=True)}


def deaths(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == "background task died"]


async def test_a_task_that_raises_turns_liveness_and_readiness_not_serving_and_is_logged_once() -> None:
    tasks = TaskSupervisor()
    failing = asyncio.Event()

    async def loop() -> None:
        await failing.wait()
        raise RuntimeError("lost the plot")

    tasks.spawn(loop(), "ingest-loop")
    server = server_with(tasks)
    address = f"127.0.0.1:{await server.start()}"
    try:
        async with aio_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert await statuses(health) == {LIVENESS_SERVICE: SERVING, "": SERVING, SERVICE: SERVING}
            with structlog.testing.capture_logs() as logs:
                failing.set()

                async def all_not_serving() -> bool:
                    return set((await statuses(health)).values()) == {NOT_SERVING}

                await wait_until(all_not_serving, within=10, what="every status NOT_SERVING")
        assert [(line["log_level"], line["task"], line["error"]) for line in deaths(logs)] == [
            ("error", "ingest-loop", "RuntimeError: lost the plot")
        ]
        assert tasks.failures == {"ingest-loop": "RuntimeError: lost the plot"}
    finally:
        await server.stop()


async def test_a_task_that_returns_counts_as_dead() -> None:
    tasks = TaskSupervisor()

    async def quits() -> None:
        return None

    with structlog.testing.capture_logs() as logs:
        await asyncio.gather(tasks.spawn(quits(), "status-publisher"))
        await asyncio.sleep(0)  # done callbacks run on the next turn
    assert tasks.failures == {"status-publisher": "returned, but should run until stopped"}
    assert len(deaths(logs)) == 1


async def test_cancellation_at_shutdown_keeps_liveness_serving_and_logs_nothing() -> None:
    tasks = TaskSupervisor()

    async def forever() -> None:
        await asyncio.Event().wait()

    spawned = tasks.spawn(forever(), "leader-election")
    background = BackgroundTask(forever, "status-follower", tasks=tasks)
    background.start()
    server = server_with(tasks)
    address = f"127.0.0.1:{await server.start()}"
    try:
        with structlog.testing.capture_logs() as logs:
            await background.stop()  # its owner stopping it
            await tasks.stop()  # the service's shutdown
            await asyncio.sleep(0)
        assert spawned.cancelled()
        assert deaths(logs) == []
        assert tasks.failures == {}
        async with aio_channel(address) as channel:
            assert await statuses(health_pb2_grpc.HealthStub(channel)) == {
                LIVENESS_SERVICE: SERVING,
                "": SERVING,
                SERVICE: SERVING,
            }
    finally:
        await server.stop()


async def test_a_released_task_may_end_any_way() -> None:
    tasks = TaskSupervisor()

    async def pump() -> None:
        return None  # e.g. its connection closed as its owner stepped down

    task = tasks.spawn(pump(), "ami-pump")
    tasks.release(task)
    await task
    await asyncio.sleep(0)
    assert tasks.failures == {}


async def test_a_cancelled_error_nobody_asked_for_counts_as_dead() -> None:
    tasks = TaskSupervisor()
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits_on_someone_elses_future() -> None:
        await future

    task = tasks.spawn(waits_on_someone_elses_future(), "resync-requests")
    await asyncio.sleep(0)
    future.cancel()  # cancels what the task awaited, not the task
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert tasks.failures == {"resync-requests": "cancelled without being asked"}
