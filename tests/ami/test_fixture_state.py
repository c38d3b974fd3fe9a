"""Every recorded session through parser + normalizer + state equals the sidecar's truth.

The initial resync is answered from the recording's own lists; the final lists the
recording connection asked for are ignored, so the final state comes from live events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import FIXTURE_DIR, Replayed

ALL = sorted(p.stem for p in FIXTURE_DIR.glob("*.ami"))
WITH_STATE = [n for n in ALL if json.loads((FIXTURE_DIR / f"{n}.json").read_text()).get("expected_final_state")]
WITHOUT_STATE = [n for n in ALL if n not in WITH_STATE]


def test_fixtures_are_present() -> None:
    assert "busy_hour_small" in WITH_STATE
    assert {"login_failure", "login_failure_md5", "login_failure_unknown_user"} <= set(WITHOUT_STATE)


@pytest.mark.parametrize("name", ALL)
def test_fixture_parses_cleanly_with_the_sidecar_frame_count(name: str) -> None:
    sidecar = json.loads((FIXTURE_DIR / f"{name}.json").read_text())
    parser = FrameParser()
    frames = parser.feed(Path(FIXTURE_DIR / f"{name}.ami").read_bytes())
    parser.finish()
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert not parser.malformed
    assert len(frames) == sidecar["frames"]
    assert sum(1 for f in frames if f.event) == sidecar["events"]


@pytest.mark.parametrize("name", WITHOUT_STATE)
def test_login_failure_sessions_end_with_an_error_response(name: str, replay: Callable[[str], Replayed]) -> None:
    run = replay(name)
    assert any(f.response == "Error" for f in run.frames)
    assert not run.state.operators
    assert not run.state.channels


@pytest.mark.parametrize("name", WITH_STATE)
def test_final_queues_strategy_and_waiting_callers_match(name: str, replay: Callable[[str], Replayed]) -> None:
    run = replay(name)
    expected = run.sidecar["expected_final_state"]["queues"]
    assert run.session.finished
    assert set(run.state.queues) == set(expected)
    for queue_name, truth in expected.items():
        queue = run.state.queues[queue_name]
        assert queue.strategy == truth["strategy"], queue_name
        assert len(queue.callers) == truth["callers_waiting"], queue_name
        assert [c.position for c in queue.callers] == list(range(1, len(queue.callers) + 1))


@pytest.mark.parametrize("name", WITH_STATE)
def test_final_members_match_field_by_field(name: str, replay: Callable[[str], Replayed]) -> None:
    run = replay(name)
    for queue_name, truth in run.sidecar["expected_final_state"]["queues"].items():
        mine = {key[1]: op for key, op in run.state.operators.items() if key[0] == queue_name}
        assert set(mine) == set(truth["members"]), queue_name
        for interface, member in truth["members"].items():
            op = mine[interface]
            got = {
                "name": op.member_name,
                "state_interface": op.state_interface,
                "membership": op.membership,
                "penalty": op.penalty,
                "paused": op.paused,
                "paused_reason": op.paused_reason,
                "status": op.status_code,
                "in_call": op.in_call,
            }
            assert got == {k: member[k] for k in got}, (queue_name, interface)
            assert bool(op.current_call_id) == op.in_call, (queue_name, interface)


@pytest.mark.parametrize("name", WITH_STATE)
def test_final_channels_up_match(name: str, replay: Callable[[str], Replayed]) -> None:
    run = replay(name)
    truth = run.sidecar["expected_final_state"]
    names = sorted(c.channel_name for c in run.state.channels.values())
    assert names == sorted(truth["channels_up"])
    assert len(names) == truth["channel_count"]


@pytest.mark.parametrize("name", WITH_STATE)
def test_calls_up_show_the_talking_member_and_the_waiting_caller(name: str, replay: Callable[[str], Replayed]) -> None:
    run = replay(name)
    for ref, call in run.sidecar["expected_final_state"]["calls_up"].items():
        queue = run.state.queues[call["queue"]]
        if call["state"] == "waiting":
            assert call["caller_channel"] in {c.channel for c in queue.callers}, ref
        else:
            op = run.state.operators[(call["queue"], call["member_interface"])]
            assert op.in_call, ref
            assert op.current_call_id == call["caller_channel"], ref
            agent = next(c for c in run.state.channels.values() if c.channel_name == call["agent_channel"])
            assert agent.bridged_to == call["caller_channel"], ref


def test_busy_hour_replays_without_unexpected_anomalies(replay: Callable[[str], Replayed]) -> None:
    run = replay("busy_hour_small")
    # One member is removed from sales while in a call: its AgentComplete arrives afterwards.
    assert dict(run.state.anomalies) == {"agent_event_for_unknown_member": 1}
    assert not run.normalizer.invalid
