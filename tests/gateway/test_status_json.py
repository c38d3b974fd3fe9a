"""The proto → JSON converters: the names other teams read, spelled out field by field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from switchboard.status.v1 import status_pb2 as S

from gateway.routes_status import StatusName
from gateway.status_json import (
    STATUS_NAMES,
    change_set_json,
    channel_json,
    operator_json,
    queue_json,
    snapshot_json,
    state_change_json,
    status_from_name,
    sync_status_json,
)

OPERATOR_NAMES = {
    "queueName", "memberId", "memberName", "stateInterface", "membership", "statusCode", "status", "paused",
    "pausedReason", "penalty", "inCall", "callsTaken", "lastCallAt", "loggedInAt", "currentCallId",
}  # fmt: skip
QUEUE_NAMES = {
    "name", "strategy", "waiting", "callers", "completed", "abandoned", "holdTimeMs", "talkTimeMs", "serviceLevel",
    "serviceLevelPerf", "longestWaitMs",
}  # fmt: skip
CALLER_NAMES = {"channel", "callerIdNum", "callerIdName", "position", "joinedAt"}
CHANNEL_NAMES = {
    "channelName", "uniqueId", "linkedId", "callerIdNum", "callerIdName", "context", "extension", "state",
    "bridgedTo", "startedAt",
}  # fmt: skip


def test_operator_json_carries_every_contract_name_with_its_value() -> None:
    op = S.Operator(
        queue_name="support",
        member_id="Local/1001@agents",
        member_name="Алиса",
        state_interface="Custom:agent1001",
        membership=S.MEMBERSHIP_DYNAMIC,
        status_code=8,
        status=S.MEMBER_STATUS_ON_HOLD,
        paused=True,
        paused_reason="Auto-Pause",
        penalty=3,
        in_call=True,
        calls_taken=12,
        last_call=1_700_000_100,
        login_time=1_700_000_000,
        current_call_id="Local/2001@callers-0001;2",
    )
    data = operator_json(op)
    assert set(data) >= OPERATOR_NAMES
    assert {k: data[k] for k in OPERATOR_NAMES} == {
        "queueName": "support",
        "memberId": "Local/1001@agents",
        "memberName": "Алиса",
        "stateInterface": "Custom:agent1001",
        "membership": "dynamic",
        "statusCode": 8,
        "status": "on_hold",
        "paused": True,
        "pausedReason": "Auto-Pause",
        "penalty": 3,
        "inCall": True,
        "callsTaken": 12,
        "lastCallAt": 1_700_000_100_000,
        "loggedInAt": 1_700_000_000_000,
        "currentCallId": "Local/2001@callers-0001;2",
    }


def test_the_ms_fields_win_over_the_deprecated_seconds_fields() -> None:
    op = operator_json(S.Operator(last_call=1_700_000_100, last_call_ms=1_700_000_100_123))
    assert op["lastCallAt"] == 1_700_000_100_123
    channel = channel_json(S.Channel(started_at_ms=1_700_000_001_500))  # a service filling only ms
    assert channel["startedAt"] == 1_700_000_001_500


def test_zero_values_are_present_not_dropped() -> None:
    data = operator_json(S.Operator(queue_name="q", member_id="PJSIP/1"))
    assert data["paused"] is False
    assert data["statusCode"] == 0
    assert data["status"] == "unknown"
    assert data["membership"] == "unknown"
    assert data["lastCallAt"] is None  # never: null, not 0
    assert "updatedAt" not in data  # never filled by the status service: not published


def test_queue_and_caller_json_names() -> None:
    queue = S.Queue(
        name="sales",
        strategy="ringall",
        waiting=1,
        callers=[S.Caller(channel="Local/2;2", caller_id_num="555", caller_id_name="C", position=1, waiting_since=9.5)],
        completed=4,
        abandoned=2,
        hold_time=11,
        talk_time=60,
        service_level=30,
        service_level_perf=87.5,
        longest_wait=12.25,
    )
    data = queue_json(queue)
    assert set(data) >= QUEUE_NAMES
    assert set(data["callers"][0]) >= CALLER_NAMES
    assert data["callers"][0]["joinedAt"] == 9500
    assert (data["serviceLevelPerf"], data["longestWaitMs"], data["holdTimeMs"]) == (87.5, 12250, 11000)


def test_channel_json_names() -> None:
    data = channel_json(
        S.Channel(
            channel_name="PJSIP/1-0001", unique_id="1.1", linked_id="1.0", state="Up", bridged_to="X", started_at=5
        )
    )
    assert set(data) >= CHANNEL_NAMES
    assert (data["channelName"], data["uniqueId"], data["linkedId"], data["state"]) == (
        "PJSIP/1-0001",
        "1.1",
        "1.0",
        "Up",
    )
    assert (data["bridgedTo"], data["startedAt"]) == ("X", 5000)


@pytest.mark.parametrize(("source", "name"), [(S.SOURCE_REDIS, "redis"), (S.SOURCE_DATABASE, "database")])
def test_snapshot_json_source_stale_as_of(source: int, name: str) -> None:
    data = snapshot_json(S.Snapshot(timestamp=12.5, source=source, stale=True, revision=7))  # type: ignore[arg-type]
    assert (data["source"], data["stale"], data["asOf"], data["revision"]) == (name, True, 12500, 7)
    assert data["lastIngestAt"] is None
    assert data["operators"] == data["queues"] == data["channels"] == []


def test_every_asterisk_status_code_has_the_contract_name() -> None:
    assert STATUS_NAMES == {
        0: "unknown", 1: "idle", 2: "in_use", 3: "busy", 4: "invalid", 5: "unavailable", 6: "ringing",
        7: "ring_in_use", 8: "on_hold",
    }  # fmt: skip
    assert {s.value for s in StatusName} == set(STATUS_NAMES.values())


@given(st.sampled_from(sorted(STATUS_NAMES)))
def test_status_names_round_trip(code: int) -> None:
    assert status_from_name(STATUS_NAMES[code]) == code


def test_unknown_status_name_raises() -> None:
    with pytest.raises(KeyError):
        status_from_name("sleeping")


def test_each_change_kind() -> None:
    key = S.OperatorKey(queue_name="q", member_id="PJSIP/1")
    assert state_change_json(S.StateChange(operator_removed=key)) == {
        "kind": "operatorRemoved",
        "queueName": "q",
        "memberId": "PJSIP/1",
    }
    assert state_change_json(S.StateChange(queue_removed="q")) == {"kind": "queueRemoved", "name": "q"}
    assert state_change_json(S.StateChange(channel_removed="1.1")) == {"kind": "channelRemoved", "uniqueId": "1.1"}
    assert state_change_json(S.StateChange(queue_upserted=S.Queue(name="q")))["queue"]["name"] == "q"
    channel = state_change_json(S.StateChange(channel_upserted=S.Channel(unique_id="1.2")))
    assert channel["channel"]["uniqueId"] == "1.2"
    op = state_change_json(S.StateChange(operator_upserted=S.Operator(member_id="PJSIP/1")))
    assert op["operator"]["memberId"] == "PJSIP/1"
    assert state_change_json(S.StateChange()) == {"kind": "unknown"}


def test_change_set_json() -> None:
    data = change_set_json(
        S.ChangeSet(revision=9, emitted_at=3.5, replace_all=True, changes=[S.StateChange(queue_removed="q")])
    )
    assert data == {
        "revision": 9,
        "emittedAt": 3500,
        "replaceAll": True,
        "changes": [{"kind": "queueRemoved", "name": "q"}],
    }


def test_sync_status_json_names() -> None:
    data = sync_status_json(
        S.SyncStatus(db_members=40, db_queues=4, redis_operators=39, redis_queues=4, redis_channels=6)
    )
    assert {k: data[k] for k in ("dbMembers", "dbQueues", "redisOperators", "redisQueues", "redisChannels")} == {
        "dbMembers": 40,
        "dbQueues": 4,
        "redisOperators": 39,
        "redisQueues": 4,
        "redisChannels": 6,
    }
    assert {"redisAvailable", "lastIngestAt", "stale"} <= set(data)
