"""Frames → typed events, including the header names of older Asterisk versions."""

from __future__ import annotations

import pytest

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.normalize import EVENT_BUILDERS, EventNormalizer
from tests.ami.harness import frame


def one(**headers: str) -> ev.Event | None:
    return EventNormalizer().normalize(frame(**headers))


MEMBER = {
    "Queue": "sales",
    "MemberName": "Alice",
    "Interface": "PJSIP/1001",
    "StateInterface": "PJSIP/1001",
    "Membership": "dynamic",
    "Penalty": "2",
    "CallsTaken": "3",
    "LastCall": "1700000000",
    "LoginTime": "1699999000",
    "InCall": "1",
    "Status": "2",
    "Paused": "1",
    "PausedReason": "lunch",
    "LastPause": "1700000100",
    "Ringinuse": "1",
    "Wrapuptime": "15",
}


def test_queue_member_status_carries_the_whole_row() -> None:
    event = one(Event="QueueMemberStatus", **MEMBER)
    assert event == ev.QueueMemberStatus(
        queue="sales",
        interface="PJSIP/1001",
        member_name="Alice",
        state_interface="PJSIP/1001",
        membership="dynamic",
        penalty=2,
        calls_taken=3,
        last_call=1700000000,
        login_time=1699999000,
        in_call=True,
        status=2,
        paused=True,
        paused_reason="lunch",
        last_pause=1700000100,
        ringinuse=True,
        wrapup_time=15,
    )


@pytest.mark.parametrize("said", ["1", "yes", "Yes", "true", "TRUE", "on", " 1 "])
def test_asterisk_spellings_of_true_read_as_true(said: str) -> None:
    event = one(Event="QueueMemberPause", Queue="q", Interface="PJSIP/1", Paused=said, Ringinuse=said)
    assert isinstance(event, ev.QueueMemberPause)
    assert (event.paused, event.ringinuse) == (True, True)


@pytest.mark.parametrize("said", ["0", "no", "false", "off", ""])
def test_other_flag_values_read_as_false(said: str) -> None:
    event = one(Event="QueueMemberPause", Queue="q", Interface="PJSIP/1", Paused=said)
    assert isinstance(event, ev.QueueMemberPause)
    assert event.paused is False


def test_numbers_tolerate_spaces_blanks_and_decimals_and_refuse_words() -> None:
    event = one(
        Event="QueueMember", Queue="q", Interface="PJSIP/1", Penalty=" 3 ", CallsTaken="", LastCall="12.0", Status="x"
    )
    assert isinstance(event, ev.QueueMember)
    assert (event.penalty, event.calls_taken, event.last_call, event.status) == (3, 0, 12, None)


def test_old_queue_member_paused_is_the_pause_event() -> None:
    assert isinstance(one(Event="QueueMemberPaused", Queue="q", Location="SIP/1", Paused="1"), ev.QueueMemberPause)


def test_location_and_name_are_aliases_of_interface_and_member_name() -> None:
    event = one(Event="QueueMember", Queue="q", Name="Bob", Location="Local/1@agents", ActionID="s-1")
    assert isinstance(event, ev.QueueMember)
    assert (event.interface, event.member_name, event.action_id) == ("Local/1@agents", "Bob", "s-1")


def test_missing_headers_of_old_versions_read_as_not_said() -> None:
    event = one(Event="QueueMemberStatus", Queue="q", Location="SIP/1", Status="1")
    assert isinstance(event, ev.QueueMemberStatus)
    assert (event.state_interface, event.in_call, event.paused_reason) == (None, None, None)


def test_join_and_leave_are_aliases_of_queue_caller_join_and_leave() -> None:
    join = one(Event="Join", Queue="q", Channel="SIP/9-1", CallerID="555", Position="1", Uniqueid="1.1")
    leave = one(Event="Leave", Queue="q", Channel="SIP/9-1", Position="1", Count="0")
    assert isinstance(join, ev.QueueCallerJoin)
    assert join.caller_id_num == "555"
    assert isinstance(leave, ev.QueueCallerLeave)


def test_unknown_caller_id_reads_as_empty() -> None:
    event = one(Event="Newchannel", Channel="PJSIP/1-1", Uniqueid="1.1", CallerIDNum="<unknown>")
    assert isinstance(event, ev.Newchannel)
    assert event.caller_id_num == ""


def test_agent_connect_names_the_caller_and_the_members_leg() -> None:
    event = one(
        Event="AgentConnect",
        Queue="sales",
        Interface="Local/1001@agents",
        Channel="Local/sales@callers-1;2",
        Uniqueid="9.1",
        DestChannel="Local/1001@agents-2;1",
        HoldTime="4",
        RingTime="1",
    )
    assert isinstance(event, ev.AgentConnect)
    assert (event.caller_channel, event.agent_channel, event.hold_time) == (
        "Local/sales@callers-1;2",
        "Local/1001@agents-2;1",
        4,
    )


def test_old_agent_connect_knows_the_caller_by_uniqueid_only() -> None:
    event = one(Event="AgentConnect", Queue="q", Member="SIP/1", Channel="SIP/1-5", Uniqueid="7.7")
    assert isinstance(event, ev.AgentConnect)
    assert (event.interface, event.caller_channel, event.caller_unique_id, event.agent_channel) == (
        "SIP/1",
        "",
        "7.7",
        "SIP/1-5",
    )


def test_core_show_channel_duration_is_read_in_seconds() -> None:
    event = one(Event="CoreShowChannel", Channel="PJSIP/1-1", Uniqueid="1.1", Duration="01:02:03", BridgeId="b")
    assert isinstance(event, ev.CoreShowChannel)
    assert (event.duration, event.bridge_id) == (3723, "b")


def test_old_bridge_link_gives_two_bridge_enters() -> None:
    found = EventNormalizer().events(
        frame(Event="Bridge", Bridgestate="Link", Channel1="A", Channel2="B", Uniqueid1="1", Uniqueid2="2")
    )
    assert [type(e) for e in found] == [ev.BridgeEnter, ev.BridgeEnter]


def test_unknown_events_are_counted_and_ignored() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="VarSet", Channel="x")) == []
    assert normalizer.unknown["VarSet"] == 1


def test_known_event_without_its_key_headers_is_counted_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="Hangup", Channel="x")) == []
    assert normalizer.invalid["Hangup"] == 1


def test_responses_are_not_events() -> None:
    assert EventNormalizer().events(frame(Response="Success", ActionID="1")) == []


def test_list_complete_events_name_their_list() -> None:
    event = one(Event="QueueStatusComplete", ActionID="s-2", EventList="Complete", ListItems="13")
    assert event == ev.ListComplete(name="QueueStatusComplete", action_id="s-2", items=13)


def test_queue_entry_describes_the_waiting_caller() -> None:
    event = one(
        Event="QueueEntry",
        Queue="sales",
        Position="2",
        Channel="PJSIP/trunk-00000012",
        Uniqueid="1700000000.18",
        CallerIDNum="5551234",
        CallerIDName="Ann",
        Wait="34",
        ActionID="s-1",
    )
    assert event == ev.QueueEntry(
        queue="sales",
        channel="PJSIP/trunk-00000012",
        unique_id="1700000000.18",
        position=2,
        caller_id_num="5551234",
        caller_id_name="Ann",
        wait=34,
        action_id="s-1",
    )


def test_newstate_carries_the_channels_new_state() -> None:
    event = one(
        Event="Newstate",
        Channel="PJSIP/1001-00000003",
        Uniqueid="1700000000.3",
        Linkedid="1700000000.2",
        ChannelStateDesc="Up",
        CallerIDNum="1001",
        CallerIDName="Alice",
        Context="agents",
        Exten="s",
    )
    assert event == ev.Newstate(
        channel="PJSIP/1001-00000003",
        unique_id="1700000000.3",
        linked_id="1700000000.2",
        state="Up",
        caller_id_num="1001",
        caller_id_name="Alice",
        context="agents",
        extension="s",
    )


def test_device_state_change_reads_the_state_in_upper_case() -> None:
    event = one(Event="DeviceStateChange", Device="PJSIP/1001", State="Inuse")
    assert event == ev.DeviceStateChange(device="PJSIP/1001", state="INUSE")


def test_device_state_change_without_a_state_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="DeviceStateChange", Device="PJSIP/1001")) == []
    assert normalizer.invalid == {"DeviceStateChange": 1}


# Every event name Switchboard reads, as Asterisk spells it, and the event it becomes.
EVENT_NAMES: dict[str, type] = {
    "QueueMemberAdded": ev.QueueMemberAdded,
    "QueueMemberRemoved": ev.QueueMemberRemoved,
    "QueueMemberStatus": ev.QueueMemberStatus,
    "QueueMemberPause": ev.QueueMemberPause,
    "QueueMemberPaused": ev.QueueMemberPause,
    "QueueMemberPenalty": ev.QueueMemberPenalty,
    "QueueMemberRinginuse": ev.QueueMemberRinginuse,
    "QueueMember": ev.QueueMember,
    "QueueCallerJoin": ev.QueueCallerJoin,
    "Join": ev.QueueCallerJoin,
    "QueueCallerLeave": ev.QueueCallerLeave,
    "Leave": ev.QueueCallerLeave,
    "QueueCallerAbandon": ev.QueueCallerAbandon,
    "AgentCalled": ev.AgentCalled,
    "AgentConnect": ev.AgentConnect,
    "AgentComplete": ev.AgentComplete,
    "AgentRingNoAnswer": ev.AgentRingNoAnswer,
    "AgentDump": ev.AgentDump,
    "Newchannel": ev.Newchannel,
    "Newstate": ev.Newstate,
    "NewCallerid": ev.NewCallerid,
    "Hangup": ev.Hangup,
    "CoreShowChannel": ev.CoreShowChannel,
    "BridgeCreate": ev.BridgeCreate,
    "BridgeDestroy": ev.BridgeDestroy,
    "BridgeEnter": ev.BridgeEnter,
    "BridgeLeave": ev.BridgeLeave,
    "Bridge": ev.BridgeEnter,
    "DeviceStateChange": ev.DeviceStateChange,
    "FullyBooted": ev.FullyBooted,
    "QueueParams": ev.QueueParams,
    "QueueEntry": ev.QueueEntry,
    "QueueStatusComplete": ev.ListComplete,
    "CoreShowChannelsComplete": ev.ListComplete,
}
# The headers each of those events needs at least, all in one frame.
EVERY_KEY_HEADER = {
    "Queue": "sales",
    "Interface": "PJSIP/1001",
    "Channel": "PJSIP/1001-00000001",
    "Uniqueid": "1700000000.1",
    "BridgeUniqueid": "5d1c3b9e-2f4a-4c6e-9a8b-0123456789ab",
    "Device": "PJSIP/1001",
    "State": "INUSE",
    "Uniqueid1": "1700000000.1",
    "Uniqueid2": "1700000000.2",
}


@pytest.mark.parametrize(("name", "kind"), EVENT_NAMES.items())
def test_each_event_name_becomes_its_event(name: str, kind: type) -> None:
    normalizer = EventNormalizer()
    found = normalizer.events(frame(Event=name, **EVERY_KEY_HEADER))
    assert [type(event) for event in found][:1] == [kind]
    assert not normalizer.unknown


def test_no_event_is_read_beyond_those_named() -> None:
    assert set(EVENT_BUILDERS) == {name.lower() for name in EVENT_NAMES}


def test_event_names_compare_case_blind() -> None:
    assert isinstance(one(Event="HANGUP", Channel="PJSIP/1-1", Uniqueid="1.1"), ev.Hangup)
    assert isinstance(one(Event="hangup", Channel="PJSIP/1-1", Uniqueid="1.1"), ev.Hangup)
