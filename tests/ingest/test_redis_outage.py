"""Redis stopped and restarted under a running pipeline (simulated Asterisk → ingest → status).

While Redis is down the status service answers from the database (source=DATABASE) and the
ingest keeps running; when Redis comes back empty, the ingest takes its lease again under a
larger fencing token, its publisher restarts the Ingest stream with a replace_all of the full
state, and reads come from Redis with the whole live picture again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog
from switchboard.status.v1 import status_pb2

from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from services.ami_ingest.simulator.callcenter import QUEUES, CallCenter
from services.ami_ingest.simulator.server import SimulatorServer
from tests.ingest._simulated import Driver, model_truth, snapshot_truth
from tests.ingest.pipeline import AMI_CREDENTIALS, Pipeline, running_pipeline

OPERATORS = sum(len(members) for _, members in QUEUES.values())
BACK_WITHIN_S = 10.0


async def sync_status(pipeline: Pipeline) -> status_pb2.SyncStatus:
    return await pipeline.status.GetSyncStatus(status_pb2.GetSyncStatusRequest(), timeout=5)


async def snapshot_from(pipeline: Pipeline, wanted: status_pb2.Source.ValueType, within: float) -> status_pb2.Snapshot:
    async def check() -> status_pb2.Snapshot | None:
        snapshot = await pipeline.snapshot()
        return snapshot if snapshot.source == wanted else None

    return await wait_until(check, within=within, what=f"a snapshot from {status_pb2.Source.Name(wanted)}")


def core_tasks_alive(pipeline: Pipeline) -> bool:
    """The ingest loop, the publisher, the leader election and the resync listener still run."""
    core = {"ingest-loop", "status-publisher", "leader-election", "resync-requests"}
    running = {task.get_name() for task in pipeline.ingest.tasks.running}
    return core <= running and not pipeline.ingest.tasks.failures


@pytest.mark.timeout(60)
async def test_reads_fall_back_to_the_database_and_return_to_the_full_live_state_in_redis(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    sim = SimulatorServer(CallCenter(seed=5, calls_per_minute=120), credentials=AMI_CREDENTIALS, run_clock=False)
    await sim.start()
    try:
        async with running_pipeline(redis_url, tmp_path, ami_port=sim.port, ingest_poll_seconds=0.2) as pipeline:
            await wait_until(lambda: pipeline.ingest.ingestor.ready, within=10, what="the ingest is ready")
            driver = Driver(sim)
            async with driver.ticking():
                await driver.run_for(100)  # calls under way before the outage

                # The resync's configuration has been written through to the database.
                async def config_in_database() -> bool:
                    return (await sync_status(pipeline)).db_members == OPERATORS

                await wait_until(config_in_database, within=10, what="the queue configuration in the database")
                token_before = pipeline.ingest.elector.token
                events_before = pipeline.ingest.ingestor.stats["events"]
                assert token_before > 0

                await asyncio.to_thread(redis_server.stop)
                try:
                    fallback = await snapshot_from(pipeline, status_pb2.SOURCE_DATABASE, within=5)
                    assert fallback.stale
                    assert len(fallback.operators) == OPERATORS
                    assert {o.queue_name for o in fallback.operators} == set(QUEUES)
                    events_in_outage = pipeline.ingest.ingestor.stats["events"]
                    await wait_until(
                        lambda: pipeline.ingest.ingestor.stats["events"] > events_in_outage + 50,
                        within=10,
                        what="the ingest applies live events with Redis down",
                    )
                    sync = await sync_status(pipeline)
                    assert not sync.redis_available
                    assert (sync.db_members, sync.db_queues) == (OPERATORS, len(QUEUES))
                    assert core_tasks_alive(pipeline), "the ingest keeps running"
                finally:
                    await asyncio.to_thread(redis_server.start)

                live = await snapshot_from(pipeline, status_pb2.SOURCE_REDIS, within=BACK_WITHIN_S)
                assert len(live.operators) >= OPERATORS
                await wait_until(
                    lambda: pipeline.ingest.elector.token > token_before and pipeline.ingest.ingestor.ready,
                    within=BACK_WITHIN_S,
                    what="the ingest leads again under a larger token and is ready",
                )
                await driver.run_for(100)  # live events on top of the new term's resync
                await driver.pause_and_settle(pipeline)

            assert pipeline.ingest.ingestor.stats["events"] > events_before
            snapshot = await pipeline.snapshot()
            assert snapshot.source == status_pb2.SOURCE_REDIS
            assert not snapshot.stale
            assert snapshot_truth(snapshot) == model_truth(sim)
            assert pipeline.ingest.elector.token > token_before
            assert not pipeline.ingest.publisher.fenced
    finally:
        await sim.close()


async def resync_heard(pipeline: Pipeline, within: float) -> bool:
    """RequestResync's path: published on Redis, heard by the leader, which resyncs."""
    resyncs = pipeline.ingest.ingestor.stats["resyncs"]
    try:
        await wait_until(pipeline.ingest.request_resync, within=within, what="RequestResync published", interval=0.1)
        await wait_until(
            lambda: pipeline.ingest.ingestor.stats["resyncs"] > resyncs, within=within, what="the leader resynced"
        )
    except TimeoutError:
        return False
    return True


@pytest.mark.timeout(60)
async def test_resync_requests_still_reach_the_leader_after_a_redis_outage(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    sim = SimulatorServer(CallCenter(seed=5), credentials=AMI_CREDENTIALS, run_clock=False)
    await sim.start()
    try:
        async with running_pipeline(redis_url, tmp_path, ami_port=sim.port, ingest_poll_seconds=0.2) as pipeline:
            await wait_until(lambda: pipeline.ingest.ingestor.ready, within=10, what="the ingest is ready")
            assert await resync_heard(pipeline, within=5), "before the outage"
            token = pipeline.ingest.elector.token

            with structlog.testing.capture_logs() as logs:
                await asyncio.to_thread(redis_server.stop)
                await wait_until(
                    lambda: any(entry["event"] == "resync channel lost" for entry in logs),
                    within=10,
                    what="the resync listener loses its subscription",
                )
            await asyncio.to_thread(redis_server.start)
            await wait_until(
                lambda: pipeline.ingest.elector.token > token and pipeline.ingest.ingestor.ready,
                within=BACK_WITHIN_S,
                what="the ingest leads again under a larger token and is ready",
            )

            assert await resync_heard(pipeline, within=5), (
                f"nobody hears RequestResync after Redis came back (dead tasks: {pipeline.ingest.tasks.failures})"
            )
    finally:
        await sim.close()
