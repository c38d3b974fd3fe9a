"""A leader whose ingest loop dies is not live: the pod must be restarted, not keep its lease."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import on_any_port
from devsupport.waiting import wait_until
from runtime.grpc_server import GrpcServer
from runtime.health import LIVENESS_SERVICE
from services.ami_ingest.__main__ import SERVICE_NAME, grpc_service
from services.ami_ingest.domain.model import StateChange
from services.ami_ingest.simulator.callcenter import CallCenter
from services.ami_ingest.simulator.server import SimulatorServer
from tests.ingest._simulated import Driver
from tests.ingest.pipeline import AMI_CREDENTIALS, running_pipeline

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class BrokenSink:
    """The ingest loop's downstream edge failing as a bug would: raising on every batch."""

    def publish(self, changes: Sequence[StateChange], *, emitted_at: float | None = None) -> None:
        raise RuntimeError("changes could not be handed on")

    def publish_replace_all(self, changes: Sequence[StateChange], *, emitted_at: float | None = None) -> None:
        raise RuntimeError("changes could not be handed on")


@pytest.mark.timeout(60)
async def test_a_dead_ingest_loop_turns_liveness_not_serving(redis_url: str, tmp_path: Path) -> None:
    sim = SimulatorServer(CallCenter(seed=5, calls_per_minute=120), credentials=AMI_CREDENTIALS, run_clock=False)
    await sim.start()
    try:
        async with running_pipeline(redis_url, tmp_path, ami_port=sim.port) as pipeline:
            ingest = pipeline.ingest
            # The service as __main__ builds it; the pipeline stops the app itself.
            service = dataclasses.replace(on_any_port(grpc_service(ingest, ingest.settings)), shutdown_hooks=[])
            server = GrpcServer(service, authenticator=authenticator_for_tests())
            address = f"127.0.0.1:{await server.start()}"
            try:
                async with aio_channel(address) as channel:
                    health = health_pb2_grpc.HealthStub(channel)

                    async def status(name: str) -> int:
                        reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                        return int(reply.status)

                    await wait_until(lambda: ingest.ingestor.ready, within=15, what="the leader is live")
                    assert await status(LIVENESS_SERVICE) == SERVING

                    with structlog.testing.capture_logs() as logs:
                        ingest.ingestor.sink = BrokenSink()
                        async with Driver(sim).ticking() as driver:
                            await driver.run_for(30)  # calls come and go: events reach the loop

                            async def not_live() -> bool:
                                return await status(LIVENESS_SERVICE) == NOT_SERVING

                            await wait_until(not_live, within=15, what="liveness NOT_SERVING")
                    assert await status(SERVICE_NAME) == NOT_SERVING
                    assert await status("") == NOT_SERVING
                    died = [line for line in logs if line["event"] == "background task died"]
                    assert [(line["task"], line["error"]) for line in died] == [
                        ("ingest-loop", "RuntimeError: changes could not be handed on")
                    ]
            finally:
                await server.stop()
    finally:
        await sim.close()
