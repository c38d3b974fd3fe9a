"""Every recorded session, replayed over TCP through the real AMI client, the ingest and the
status service into Redis: the final snapshot equals the sidecar's expected_final_state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from switchboard.status.v1 import status_pb2

from services.ami_ingest.simulator.recording import load_recording
from services.ami_ingest.simulator.replay import ReplayServer
from tests.ingest.pipeline import running_pipeline

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ami"
WITH_STATE = sorted(
    p.stem for p in FIXTURES.glob("*.ami") if json.loads(p.with_suffix(".json").read_text()).get("expected_final_state")
)


def operator_fields(op: status_pb2.Operator) -> dict[str, Any]:
    membership = status_pb2.Membership.Name(op.membership).removeprefix("MEMBERSHIP_").lower()
    return {
        "name": op.member_name,
        "state_interface": op.state_interface,
        "membership": membership,
        "penalty": op.penalty,
        "paused": op.paused,
        "paused_reason": op.paused_reason,
        "status": op.status_code,
        "in_call": op.in_call,
    }


def test_every_fixture_with_a_final_state_is_covered() -> None:
    assert {"busy_hour_small", "calls_basic", "members_lifecycle", "quirks", "login_and_static"} <= set(WITH_STATE)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", WITH_STATE)
async def test_replayed_session_ends_in_the_recorded_truth(name: str, redis_url: str, tmp_path: Path) -> None:
    sidecar = json.loads((FIXTURES / f"{name}.json").read_text())
    truth = sidecar["expected_final_state"]
    auth = "md5" if "md5" in sidecar["connection"].get("auth", "plain").lower() else "plain"
    async with (
        ReplayServer(load_recording(FIXTURES / f"{name}.ami")) as replay,
        running_pipeline(redis_url, tmp_path, ami_port=replay.port, ami_auth=auth) as pipeline,
    ):
        await replay.finished.wait()
        await pipeline.settle()
        snapshot = await pipeline.snapshot()

    queues = {q.name: q for q in snapshot.queues}
    assert set(queues) == set(truth["queues"])
    for queue_name, expected in truth["queues"].items():
        assert queues[queue_name].strategy == expected["strategy"], queue_name
        assert queues[queue_name].waiting == expected["callers_waiting"], queue_name
        mine = {op.member_id: op for op in snapshot.operators if op.queue_name == queue_name}
        assert set(mine) == set(expected["members"]), queue_name
        for interface, member in expected["members"].items():
            got = operator_fields(mine[interface])
            assert got == {k: member[k] for k in got}, (queue_name, interface)
    assert sorted(c.channel_name for c in snapshot.channels) == sorted(truth["channels_up"])
    assert len(snapshot.channels) == truth["channel_count"]
