"""Resync: the state ends equal to Asterisk's lists, with live events kept and ordered."""

from __future__ import annotations

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.model import ChannelRemoved, OperatorRemoved, QueueRemoved
from services.ami_ingest.domain.resync import ResyncResult, ResyncSession, reconcile
from services.ami_ingest.domain.state import CallCenterState


def params(queue: str = "sales", **kw: object) -> ev.QueueParams:
    return ev.QueueParams(queue=queue, strategy="ringall", action_id="qs", **kw)  # type: ignore[arg-type]


def member(interface: str, queue: str = "sales", **kw: object) -> ev.QueueMember:
    defaults: dict[str, object] = {"member_name": interface, "status": 1, "paused": False, "in_call": False}
    defaults.update(kw)
    return ev.QueueMember(queue=queue, interface=interface, action_id="qs", **defaults)  # type: ignore[arg-type]


def entry(channel: str, position: int, wait: int = 0) -> ev.QueueEntry:
    return ev.QueueEntry(queue="sales", channel=channel, position=position, wait=wait, action_id="qs")


def core_channel(uid: str, name: str, bridge: str = "", duration: int = 0) -> ev.CoreShowChannel:
    return ev.CoreShowChannel(
        channel=name, unique_id=uid, state="Up", bridge_id=bridge, duration=duration, action_id="cs"
    )


QS_DONE = ev.ListComplete(name="QueueStatusComplete", action_id="qs")
CS_DONE = ev.ListComplete(name="CoreShowChannelsComplete", action_id="cs")


def stale_state() -> CallCenterState:
    state = CallCenterState()
    state.apply(ev.QueueMemberAdded(queue="sales", interface="Gone/1", status=1), 1.0)
    state.apply(ev.QueueMemberAdded(queue="old", interface="Gone/2", status=1), 1.0)
    state.apply(ev.QueueCallerJoin(queue="sales", channel="GhostCaller", position=1), 1.0)
    state.apply(ev.Newchannel(channel="Ghost;1", unique_id="g"), 1.0)
    return state


def test_reconcile_removes_stale_operators_queues_callers_and_channels() -> None:
    state = stale_state()
    truth = ResyncResult(queues={"sales": params()}, members=[member("PJSIP/1")])
    changes = reconcile(state, truth, 10.0)
    assert OperatorRemoved("sales", "Gone/1") in changes
    assert OperatorRemoved("old", "Gone/2") in changes
    assert QueueRemoved("old") in changes
    assert ChannelRemoved("g") in changes
    assert set(state.operators) == {("sales", "PJSIP/1")}
    assert state.queues["sales"].callers == ()
    assert not state.channels


def test_reconcile_takes_waits_and_channel_ages_from_the_lists() -> None:
    state = CallCenterState()
    truth = ResyncResult(
        queues={"sales": params(completed=10, service_level_perf=50.0, service_level=30)},
        entries=[entry("C2", 2, wait=3), entry("C1", 1, wait=9)],
        channels=[core_channel("1", "C1;2", duration=9)],
    )
    reconcile(state, truth, 100.0)
    queue = state.queues["sales"]
    assert [(c.channel, c.position, c.waiting_since) for c in queue.callers] == [("C1", 1, 91.0), ("C2", 2, 97.0)]
    assert queue.completed_in_sl == 5
    assert state.channels["1"].started_at == 91.0


def test_reconcile_rebuilds_bridges_and_the_current_call_of_members_in_call() -> None:
    state = CallCenterState()
    truth = ResyncResult(
        queues={"sales": params()},
        members=[member("Local/1001@agents", in_call=True)],
        channels=[core_channel("1", "Local/sales@callers-1;2", "b"), core_channel("2", "Local/1001@agents-7;1", "b")],
    )
    reconcile(state, truth, 5.0)
    assert state.channels["2"].bridged_to == "Local/sales@callers-1;2"
    assert state.operators[("sales", "Local/1001@agents")].current_call_id == "Local/sales@callers-1;2"
    assert state.queues["sales"].calls == 1


def session_with(state: CallCenterState) -> ResyncSession:
    return ResyncSession(state, "qs", "cs")


def test_live_events_wait_until_both_lists_are_complete() -> None:
    state = CallCenterState()
    session = session_with(state)
    assert session.feed(params(), 1.0) == []
    assert session.feed(ev.Newchannel(channel="New;1", unique_id="n"), 1.0) == []
    assert session.feed(QS_DONE, 1.0) == []
    assert not state.channels
    changes = session.feed(CS_DONE, 2.0)
    assert session.finished
    assert "n" in state.channels
    assert changes


def test_list_items_of_another_action_are_treated_as_live_events() -> None:
    state = CallCenterState()
    session = session_with(state)
    session.feed(ev.QueueParams(queue="other", action_id="someone-else"), 1.0)
    session.feed(QS_DONE, 1.0)
    session.feed(CS_DONE, 1.0)
    assert "other" not in state.queues


def test_join_and_leave_both_before_the_snapshot_leave_no_caller() -> None:
    state = CallCenterState()
    session = session_with(state)
    session.feed(ev.QueueCallerJoin(queue="sales", channel="C9", position=1), 1.0)
    session.feed(ev.QueueCallerLeave(queue="sales", channel="C9"), 1.5)
    for item in (params(), QS_DONE, CS_DONE):
        session.feed(item, 2.0)
    assert state.queues["sales"].callers == ()
    assert not state.anomalies


def test_join_already_in_the_snapshot_keeps_the_snapshot_position() -> None:
    state = CallCenterState()
    session = session_with(state)
    # C1 joined at position 2; the caller ahead left; the snapshot lists C1 first.
    session.feed(ev.QueueCallerJoin(queue="sales", channel="C1", position=2), 1.0)
    session.feed(ev.QueueCallerLeave(queue="sales", channel="C0"), 1.2)
    for item in (params(), entry("C1", 1, wait=1), QS_DONE, CS_DONE):
        session.feed(item, 2.0)
    assert [(c.channel, c.position) for c in state.queues["sales"].callers] == [("C1", 1)]


def test_leave_after_the_snapshot_removes_the_listed_caller() -> None:
    state = CallCenterState()
    session = session_with(state)
    session.feed(params(), 1.0)
    session.feed(entry("C1", 1), 1.0)
    session.feed(ev.QueueCallerLeave(queue="sales", channel="C1"), 1.5)
    session.feed(QS_DONE, 2.0)
    session.feed(CS_DONE, 2.0)
    assert state.queues["sales"].callers == ()


def test_counters_count_only_events_after_their_queues_snapshot() -> None:
    state = CallCenterState()
    session = session_with(state)
    session.feed(ev.QueueCallerAbandon(queue="sales", channel="A"), 1.0)  # already in Abandoned=1
    session.feed(params(abandoned=1), 1.1)
    session.feed(ev.QueueCallerAbandon(queue="sales", channel="B"), 1.2)  # new
    for item in (QS_DONE, CS_DONE):
        session.feed(item, 2.0)
    assert state.queues["sales"].abandoned == 2


def test_member_rows_replayed_end_at_the_latest_event() -> None:
    state = CallCenterState()
    session = session_with(state)
    session.feed(params(), 1.0)
    session.feed(member("PJSIP/1", paused=False), 1.0)
    session.feed(ev.QueueMemberPause(queue="sales", interface="PJSIP/1", paused=True, paused_reason="break"), 1.5)
    for item in (QS_DONE, CS_DONE):
        session.feed(item, 2.0)
    op = state.operators[("sales", "PJSIP/1")]
    assert (op.paused, op.paused_reason) == (True, "break")


def test_hangup_of_a_channel_the_snapshot_missed_is_not_an_anomaly() -> None:
    state = CallCenterState()
    session = session_with(state)
    session.feed(ev.Hangup(channel="Old;1", unique_id="o"), 1.0)
    for item in (params(), QS_DONE, CS_DONE):
        session.feed(item, 2.0)
    assert not state.anomalies


def test_after_the_resync_events_apply_directly() -> None:
    state = CallCenterState()
    session = session_with(state)
    for item in (params(), QS_DONE, CS_DONE):
        session.feed(item, 1.0)
    assert session.feed(ev.Newchannel(channel="X;1", unique_id="x"), 2.0)
    assert "x" in state.channels


def test_a_second_resync_after_reconnect_converges_to_the_new_truth() -> None:
    state = CallCenterState()
    first = session_with(state)
    for item in (params(), member("PJSIP/1"), entry("C1", 1), core_channel("1", "C1;2"), QS_DONE, CS_DONE):
        first.feed(item, 1.0)
    # Disconnected mid-call: C1 was answered and hung up, PJSIP/2 logged in meanwhile.
    second = session_with(state)
    for item in (params(), member("PJSIP/1"), member("PJSIP/2"), QS_DONE, CS_DONE):
        second.feed(item, 50.0)
    assert set(state.operators) == {("sales", "PJSIP/1"), ("sales", "PJSIP/2")}
    assert state.queues["sales"].callers == ()
    assert not state.channels
