"""The ingest shares its event loop with its gRPC server: a burst of AMI events is applied in
slices between which other tasks (health checks, GetIngestStatus) run, and the socket reader
does not run ahead of the ingest while it does."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import on_any_port
from devsupport.waiting import wait_until
from runtime.grpc_server import GrpcServer
from services.ami_ingest.__main__ import grpc_service
from services.ami_ingest.ingestor import MAX_BACKLOG
from services.ami_ingest.simulator.recording import load_recording
from services.ami_ingest.simulator.replay import ReplayServer
from tests.ingest.pipeline import running_pipeline
from tests.ingest.test_ingestor import member_headers, running, script_lists  # noqa: F401  (running: a fixture)

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ami" / "busy_hour_small.ami"
BURST = 20_000


async def test_a_large_read_is_applied_in_slices_that_let_other_tasks_run(running: Any) -> None:  # noqa: F811
    ingestor, connection, sink = running
    script_lists(connection, start=1, paused=False)
    await ingestor.resync(connection)
    before, published = ingestor.stats["events"], len(sink.calls)
    reasons = [f"r{i}" for i in range(BURST)]
    connection.live_read(
        [(100 + i, member_headers("QueueMemberPause", paused=True, reason=r)) for i, r in enumerate(reasons)]
    )
    seen: list[int] = []
    while ingestor.stats["events"] < before + BURST:
        seen.append(ingestor.stats["events"] - before)
        await asyncio.sleep(0)

    # One read, but this task ran while it was half applied.
    assert any(0 < applied < BURST for applied in seen), seen[:3] + seen[-3:]
    # And every change reached the sink, in event order.
    changes = [change for _, batch in sink.calls[published:] for change in batch]
    assert [c.operator.paused_reason for c in changes] == reasons


@pytest.mark.timeout(120)
async def test_health_and_status_answer_while_a_burst_is_being_applied(redis_url: str, tmp_path: Path) -> None:
    recording = load_recording(FIXTURE)
    async with (
        ReplayServer(recording, speed=0, repeat=8) as replay,
        running_pipeline(redis_url, tmp_path, ami_port=replay.port) as pipeline,
    ):
        ingest = pipeline.ingest
        service = dataclasses.replace(grpc_service(ingest, ingest.settings), shutdown_hooks=())
        server = GrpcServer(on_any_port(service), authenticator=authenticator_for_tests())
        channel = aio_channel(f"127.0.0.1:{await server.start()}")
        try:
            health = health_pb2_grpc.HealthStub(channel)
            control = ingest_pb2_grpc.IngestControlStub(channel)
            largest = 0

            async def watch_backlog() -> None:
                nonlocal largest
                while True:
                    largest = max(largest, ingest.ingestor.backlog)
                    await asyncio.sleep(0)

            watcher = asyncio.create_task(watch_backlog())
            await wait_until(lambda: ingest.ingestor.stats["events"] > 0, within=30, what="the burst starts")
            answered: list[int] = []
            for _ in range(3):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=60)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                answered.append(ingest.ingestor.stats["events"])
                status = await control.GetIngestStatus(ingest_pb2.GetIngestStatusRequest(), timeout=60)
                answered.append(ingest.ingestor.stats["events"])
                assert status.events_total <= answered[-1]
            await replay.finished.wait()
            await pipeline.settle()
            total = ingest.ingestor.stats["events"]
            watcher.cancel()
        finally:
            await channel.close()
            await server.stop()

    # Six answers came back before the ingest had applied the burst, not after it.
    assert answered[-1] < total, (answered, total)
    # The reader waited for room instead of parsing the burst into memory (one read may go over).
    assert 0 < largest < MAX_BACKLOG + 4096, largest
