"""CallCenterState.apply: one event kind a test."""

from __future__ import annotations

from dataclasses import replace

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.model import (
    ChannelRemoved,
    ChannelUpserted,
    OperatorRemoved,
    OperatorUpserted,
    QueueUpserted,
    status_name,
)
from services.ami_ingest.domain.state import CallCenterState

ALICE = ev.QueueMemberAdded(
    queue="sales",
    interface="Local/1001@agents",
    member_name="Alice",
    state_interface="Custom:agent1001",
    membership="dynamic",
    penalty=0,
    status=1,
    paused=False,
    paused_reason="",
    in_call=False,
    calls_taken=0,
)


def with_alice(*queues: str) -> CallCenterState:
    state = CallCenterState()
    for queue in queues or ("sales",):
        state.apply(replace(ALICE, queue=queue), 1.0)
    return state


def test_member_added_creates_queue_and_operator() -> None:
    state = CallCenterState()
    changes = state.apply(ALICE, 1.0)
    assert [type(c) for c in changes] == [QueueUpserted, OperatorUpserted]
    op = state.operators[("sales", "Local/1001@agents")]
    assert (op.member_name, op.state_interface, op.membership, op.status) == (
        "Alice",
        "Custom:agent1001",
        "dynamic",
        "idle",
    )


def test_same_row_twice_changes_nothing() -> None:
    state = with_alice()
    assert state.apply(ALICE, 2.0) == []


def test_member_removed_removes_the_operator() -> None:
    state = with_alice()
    changes = state.apply(ev.QueueMemberRemoved(queue="sales", interface="Local/1001@agents"), 2.0)
    assert changes == [OperatorRemoved("sales", "Local/1001@agents")]
    assert not state.operators


def test_removal_of_unknown_member_is_counted_and_skipped() -> None:
    state = CallCenterState()
    assert state.apply(ev.QueueMemberRemoved(queue="sales", interface="X"), 1.0) == []
    assert state.anomalies["removal_of_unknown_member"] == 1


def test_pause_sets_reason_and_unpause_clears_it() -> None:
    state = with_alice()
    state.apply(
        ev.QueueMemberPause(queue="sales", interface="Local/1001@agents", paused=True, paused_reason="lunch"), 2
    )
    assert state.operators[("sales", "Local/1001@agents")].paused_reason == "lunch"
    state.apply(ev.QueueMemberPause(queue="sales", interface="Local/1001@agents", paused=False), 3)
    op = state.operators[("sales", "Local/1001@agents")]
    assert (op.paused, op.paused_reason) == (False, "")


def test_pause_is_per_queue() -> None:
    state = with_alice("sales", "support")
    state.apply(ev.QueueMemberPause(queue="support", interface="Local/1001@agents", paused=True), 2)
    assert not state.operators[("sales", "Local/1001@agents")].paused
    assert state.operators[("support", "Local/1001@agents")].paused


def test_penalty_event_updates_penalty() -> None:
    state = with_alice()
    state.apply(ev.QueueMemberPenalty(queue="sales", interface="Local/1001@agents", penalty=3), 2)
    assert state.operators[("sales", "Local/1001@agents")].penalty == 3


def test_ringinuse_event_updates_ringinuse() -> None:
    state = with_alice()
    state.apply(ev.QueueMemberRinginuse(queue="sales", interface="Local/1001@agents", ringinuse=True), 2)
    assert state.operators[("sales", "Local/1001@agents")].ringinuse


def test_device_state_change_updates_the_member_in_every_queue() -> None:
    state = with_alice("sales", "support")
    changes = state.apply(ev.DeviceStateChange(device="Custom:agent1001", state="RINGING"), 2)
    assert len([c for c in changes if isinstance(c, OperatorUpserted)]) == 2
    assert {op.status for op in state.operators.values()} == {"ringing"}


def test_device_state_of_a_queue_pseudo_device_changes_nothing() -> None:
    state = with_alice()
    assert state.apply(ev.DeviceStateChange(device="Queue:sales_avail", state="INUSE"), 2) == []


def test_status_names_cover_codes_zero_to_eight() -> None:
    assert [status_name(i) for i in range(9)] == [
        "unknown",
        "idle",
        "in_use",
        "busy",
        "invalid",
        "unavailable",
        "ringing",
        "ring_in_use",
        "on_hold",
    ]
    assert status_name(42) == "unknown"


def join(channel: str, position: int, queue: str = "sales") -> ev.QueueCallerJoin:
    return ev.QueueCallerJoin(queue=queue, channel=channel, unique_id=channel, position=position, caller_id_num="5")


def test_caller_join_adds_a_waiting_caller_with_its_start_time() -> None:
    state = with_alice()
    state.apply(join("C1", 1), 10.0)
    caller = state.queues["sales"].callers[0]
    assert (caller.channel, caller.position, caller.waiting_since) == ("C1", 1, 10.0)
    assert state.queues["sales"].longest_wait(15.0) == 5.0


def test_leave_moves_the_callers_behind_up() -> None:
    state = with_alice()
    for i in (1, 2, 3):
        state.apply(join(f"C{i}", i), float(i))
    state.apply(ev.QueueCallerLeave(queue="sales", channel="C1"), 5.0)
    assert [(c.channel, c.position) for c in state.queues["sales"].callers] == [("C2", 1), ("C3", 2)]


def test_priority_join_in_the_middle_pushes_the_others_down() -> None:
    state = with_alice()
    state.apply(join("C1", 1), 1.0)
    state.apply(join("C2", 2), 2.0)
    state.apply(join("VIP", 1), 3.0)
    assert [(c.channel, c.position) for c in state.queues["sales"].callers] == [("VIP", 1), ("C1", 2), ("C2", 3)]


def test_join_of_a_caller_already_waiting_keeps_its_entry() -> None:
    state = with_alice()
    state.apply(join("C1", 1), 1.0)
    assert state.apply(join("C1", 4), 9.0) == []
    assert state.queues["sales"].callers[0].waiting_since == 1.0


def test_leave_of_a_caller_never_seen_is_counted_and_skipped() -> None:
    state = with_alice()
    assert state.apply(ev.QueueCallerLeave(queue="sales", channel="ghost"), 1.0) == []
    assert state.anomalies["leave_of_unknown_caller"] == 1


def test_abandon_counts_and_the_following_leave_removes_the_caller() -> None:
    state = with_alice()
    state.apply(join("C1", 1), 1.0)
    state.apply(ev.QueueCallerAbandon(queue="sales", channel="C1", hold_time=5), 6.0)
    state.apply(ev.QueueCallerLeave(queue="sales", channel="C1"), 6.0)
    assert state.queues["sales"].abandoned == 1
    assert state.queues["sales"].callers == ()


def connect(queue: str = "sales") -> ev.AgentConnect:
    return ev.AgentConnect(
        queue=queue, interface="Local/1001@agents", caller_channel="C1;2", agent_channel="A;1", hold_time=8
    )


def test_agent_connect_puts_the_member_in_call_with_the_caller_in_this_queue_only() -> None:
    state = with_alice("sales", "support")
    state.apply(connect(), 2.0)
    op = state.operators[("sales", "Local/1001@agents")]
    assert (op.in_call, op.current_call_id) == (True, "C1;2")
    assert not state.operators[("support", "Local/1001@agents")].in_call
    assert state.queues["sales"].calls == 1
    assert state.queues["sales"].hold_time == 2  # app_queue: (3 * 0 + 8) / 4


def test_agent_complete_ends_the_call_and_counts_it() -> None:
    state = with_alice()
    state.queues["sales"] = replace(state.queues["sales"], service_level=30)
    state.apply(connect(), 2.0)
    state.apply(ev.AgentComplete(queue="sales", interface="Local/1001@agents", hold_time=8, talk_time=40), 50.0)
    op = state.operators[("sales", "Local/1001@agents")]
    queue = state.queues["sales"]
    assert (op.in_call, op.current_call_id, op.calls_taken, op.last_call) == (False, "", 1, 50)
    assert (queue.completed, queue.calls, queue.talk_time, queue.service_level_perf) == (1, 0, 10, 100.0)


def test_agent_event_for_unknown_member_is_counted() -> None:
    state = CallCenterState()
    assert state.apply(connect(), 1.0) == []
    assert state.anomalies["agent_event_for_unknown_member"] == 1


def test_agent_called_and_ring_no_answer_change_no_row() -> None:
    state = with_alice()
    assert state.apply(ev.AgentCalled(queue="sales", interface="Local/1001@agents"), 1.0) == []
    assert state.apply(ev.AgentRingNoAnswer(queue="sales", interface="Local/1001@agents", ring_time=6000), 1) == []


def channel(kind: type[ev.ChannelEvent], uid: str, name: str, state_desc: str = "Up") -> ev.ChannelEvent:
    return kind(channel=name, unique_id=uid, linked_id="L", state=state_desc, caller_id_num="5", context="c")


def test_newchannel_adds_and_newstate_updates_the_channel() -> None:
    state = CallCenterState()
    state.apply(channel(ev.Newchannel, "1", "PJSIP/1-1", "Ring"), 5.0)
    changes = state.apply(channel(ev.Newstate, "1", "PJSIP/1-1", "Up"), 6.0)
    assert changes == [ChannelUpserted(state.channels["1"])]
    assert (state.channels["1"].state, state.channels["1"].started_at) == ("Up", 5.0)


def test_hangup_removes_the_channel() -> None:
    state = CallCenterState()
    state.apply(channel(ev.Newchannel, "1", "PJSIP/1-1"), 5.0)
    assert state.apply(ev.Hangup(channel="PJSIP/1-1", unique_id="1"), 6.0) == [ChannelRemoved("1")]


def test_hangup_of_unknown_channel_is_counted_and_skipped() -> None:
    state = CallCenterState()
    assert state.apply(ev.Hangup(channel="x", unique_id="nope"), 1.0) == []
    assert state.anomalies["hangup_of_unknown_channel"] == 1


def bridged_pair() -> CallCenterState:
    state = CallCenterState()
    state.apply(channel(ev.Newchannel, "1", "Caller;2"), 1.0)
    state.apply(channel(ev.Newchannel, "2", "Agent;1"), 1.0)
    state.apply(ev.BridgeCreate(bridge_id="b"), 2.0)
    state.apply(ev.BridgeEnter(bridge_id="b", channel="Agent;1", unique_id="2"), 2.0)
    state.apply(ev.BridgeEnter(bridge_id="b", channel="Caller;2", unique_id="1"), 2.0)
    return state


def test_bridge_enter_sets_each_sides_peer() -> None:
    state = bridged_pair()
    assert (state.channels["1"].bridged_to, state.channels["2"].bridged_to) == ("Agent;1", "Caller;2")


def test_bridge_leave_clears_the_peers() -> None:
    state = bridged_pair()
    state.apply(ev.BridgeLeave(bridge_id="b", channel="Agent;1", unique_id="2"), 3.0)
    assert (state.channels["1"].bridged_to, state.channels["2"].bridged_to) == ("", "")


def test_hangup_of_a_bridged_channel_clears_its_peer() -> None:
    state = bridged_pair()
    state.apply(ev.Hangup(channel="Agent;1", unique_id="2"), 3.0)
    assert state.channels["1"].bridged_to == ""


def test_bridge_destroy_clears_remaining_members() -> None:
    state = bridged_pair()
    state.apply(ev.BridgeDestroy(bridge_id="b"), 3.0)
    assert not state.channel_table.bridges
    assert state.channels["1"].bridge_id == ""
