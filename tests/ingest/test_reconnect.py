"""A reconnect in mid-stream converges to the truth.

The call center keeps running while the ingest is cut off: whatever it missed, the resync after
the reconnect must leave the status service equal to what Asterisk (here the simulator's model,
read through its own QueueStatus / CoreShowChannels answers) says is true.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from switchboard.status.v1 import status_pb2

from devsupport.waiting import wait_until
from services.ami_ingest.simulator.callcenter import CallCenter
from services.ami_ingest.simulator.recording import parse_recording
from services.ami_ingest.simulator.replay import ReplayServer
from services.ami_ingest.simulator.server import SimulatorServer
from tests.ingest._simulated import Driver, model_truth, snapshot_truth
from tests.ingest.pipeline import AMI_CREDENTIALS, Pipeline, running_pipeline
from tests.ingest.test_fixture_pipeline import FIXTURES, operator_fields


async def reconnected(pipeline: Pipeline, resyncs: int) -> None:
    await wait_until(
        lambda: pipeline.ingest.ingestor.stats["resyncs"] >= resyncs, within=10, what=f"resync number {resyncs}"
    )


async def drop_every_session(sim: SimulatorServer) -> SimulatorServer:
    """Cut each client off in the middle of a frame, as a dying Asterisk does."""
    for session in list(sim.sessions):
        session.write_now(b"Event: QueueMemberStatus\r\nQueue: sal")
        await session.close()
    return sim


async def restart_on_the_same_port(sim: SimulatorServer) -> SimulatorServer:
    """Asterisk restarted: the server goes away and comes back on its port, the model carries on."""
    await sim.close()
    restarted = SimulatorServer(sim.center, port=sim.port, credentials=AMI_CREDENTIALS, run_clock=False)
    await restarted.start()
    return restarted


@pytest.mark.timeout(60)
@pytest.mark.parametrize("outage", [drop_every_session, restart_on_the_same_port])
async def test_after_a_reconnect_in_mid_stream_the_status_equals_the_simulated_truth(
    outage: Any, redis_url: str, tmp_path: Path
) -> None:
    sim = SimulatorServer(CallCenter(seed=11, calls_per_minute=120), credentials=AMI_CREDENTIALS, run_clock=False)
    await sim.start()
    try:
        async with running_pipeline(redis_url, tmp_path, ami_port=sim.port) as pipeline:
            await reconnected(pipeline, 1)
            driver = Driver(sim)
            async with driver.ticking():
                await driver.run_for(200)
                await driver.pause_and_settle(pipeline)
                assert snapshot_truth(await pipeline.snapshot()) == model_truth(sim), "live path before the cut"
                busy = model_truth(sim)
                assert busy["channels"], "calls are up when the connection drops"

                driver.running.set()
                await driver.run_for(60)
                sim = await outage(sim)
                driver.sim = sim
                await driver.run_for(60)  # events the ingest never sees
                await reconnected(pipeline, 2)
                await driver.run_for(100)  # live events on top of the resync
                await driver.pause_and_settle(pipeline)

            assert pipeline.ingest.client is not None
            assert pipeline.ingest.client.connection_number >= 2
            truth = model_truth(sim)
            assert truth != busy, "the model moved on while the ingest was away"
            assert snapshot_truth(await pipeline.snapshot()) == truth
    finally:
        await sim.close()


def expected_picture(truth: dict[str, Any]) -> dict[str, Any]:
    return {
        "waiting": {name: queue["callers_waiting"] for name, queue in truth["queues"].items()},
        "strategy": {name: queue["strategy"] for name, queue in truth["queues"].items()},
        "operators": {
            (name, interface): {k: member[k] for k in operator_fields(status_pb2.Operator())}
            for name, queue in truth["queues"].items()
            for interface, member in queue["members"].items()
        },
        "channels": sorted(truth["channels_up"]),
    }


def actual_picture(snapshot: status_pb2.Snapshot) -> dict[str, Any]:
    return {
        "waiting": {q.name: q.waiting for q in snapshot.queues},
        "strategy": {q.name: q.strategy for q in snapshot.queues},
        "operators": {(o.queue_name, o.member_id): operator_fields(o) for o in snapshot.operators},
        "channels": sorted(c.channel_name for c in snapshot.channels),
    }


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("first", "second"), [("busy_hour_small", "login_and_static"), ("members_lifecycle", "calls_basic")]
)
async def test_a_recording_with_two_connections_ends_in_the_truth_of_the_second(
    first: str, second: str, redis_url: str, tmp_path: Path
) -> None:
    head = (FIXTURES / f"{first}.ami").read_bytes()
    middle = head.rindex(b"Event: ", 0, len(head) * 2 // 3)
    data = head[:middle] + b"Event: QueueCallerJoin\r\nQueue: sal" + (FIXTURES / f"{second}.ami").read_bytes()
    recording = parse_recording(data)
    assert len(recording.segments) == 2
    truth = json.loads((FIXTURES / f"{second}.json").read_text())["expected_final_state"]
    async with (
        ReplayServer(recording) as replay,
        running_pipeline(redis_url, tmp_path, ami_port=replay.port) as pipeline,
    ):
        async with asyncio.timeout(30):
            await replay.finished.wait()
        await reconnected(pipeline, 2)
        await pipeline.settle()
        snapshot = await pipeline.snapshot()
    assert actual_picture(snapshot) == expected_picture(truth)
