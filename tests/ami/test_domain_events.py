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


def test_a_number_written_with_a_fraction_reads_as_its_whole_part() -> None:
    event = one(Event="QueueParams", Queue="sales", Holdtime="12.7", Calls="", Completed="many")
    assert isinstance(event, ev.QueueParams)
    assert (event.hold_time, event.calls, event.completed) == (12, 0, None)


def test_queue_params_carry_the_queue_summary() -> None:
    event = one(
        Event="QueueParams",
        Queue="sales",
        Max="0",
        Strategy="rrmemory",
        Calls="3",
        Holdtime="21",
        TalkTime="143",
        Completed="57",
        Abandoned="4",
        ServiceLevel="60",
        ServicelevelPerf="87.5",
        ActionID="s-1",
    )
    assert event == ev.QueueParams(
        queue="sales",
        strategy="rrmemory",
        calls=3,
        hold_time=21,
        talk_time=143,
        completed=57,
        abandoned=4,
        service_level=60,
        service_level_perf=87.5,
        action_id="s-1",
    )


@pytest.mark.parametrize(("said", "read"), [(" 87.5 ", 87.5), ("", 0.0), ("n/a", None)])
def test_a_service_level_percentage_reads_as_a_float(said: str, read: float | None) -> None:
    event = one(Event="QueueParams", Queue="sales", ServicelevelPerf=said)
    assert isinstance(event, ev.QueueParams)
    assert event.service_level_perf == read


def test_a_queue_summary_without_its_queue_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="QueueParams", Calls="3")) == []
    assert normalizer.invalid == {"QueueParams": 1}


@pytest.mark.parametrize(("said", "seconds"), [("01:02:03", 3723), ("00:00:59", 59), ("75", 75), ("1:00", 60)])
def test_a_channels_duration_reads_in_seconds(said: str, seconds: int) -> None:
    event = one(Event="CoreShowChannel", Channel="PJSIP/1-1", Uniqueid="1.1", Duration=said)
    assert isinstance(event, ev.CoreShowChannel)
    assert event.duration == seconds


@pytest.mark.parametrize("said", ["", "01:xx:03"])
def test_an_unreadable_duration_is_unknown(said: str) -> None:
    event = one(Event="CoreShowChannel", Channel="PJSIP/1-1", Uniqueid="1.1", Duration=said)
    assert isinstance(event, ev.CoreShowChannel)
    assert event.duration is None


def test_core_show_channel_carries_the_channel_its_bridge_and_list() -> None:
    event = one(
        Event="CoreShowChannel",
        ActionID="c-1",
        Channel="PJSIP/1001-00000001",
        Uniqueid="1700000000.1",
        Linkedid="1700000000.0",
        ChannelStateDesc="Up",
        CallerIDNum="1001",
        CallerIDName="<unknown>",
        Context="agents",
        Extension="s",
        BridgeUniqueid="b-1",
        Duration="00:01:00",
    )
    assert event == ev.CoreShowChannel(
        channel="PJSIP/1001-00000001",
        unique_id="1700000000.1",
        linked_id="1700000000.0",
        state="Up",
        caller_id_num="1001",
        caller_id_name="",
        context="agents",
        extension="s",
        bridge_id="b-1",
        duration=60,
        action_id="c-1",
    )


def test_a_channel_not_in_a_bridge_has_an_empty_bridge_id() -> None:
    event = one(Event="CoreShowChannel", Channel="PJSIP/1-1", Uniqueid="1.1")
    assert isinstance(event, ev.CoreShowChannel)
    assert event.bridge_id == ""


def test_old_channel_headers_state_and_callerid_are_read() -> None:
    event = one(Event="Newchannel", Channel="SIP/1-1", Uniqueid="1.1", State="Ring", CallerID="555")
    assert isinstance(event, ev.Newchannel)
    assert (event.state, event.caller_id_num, event.linked_id, event.context, event.extension) == (
        "Ring",
        "555",
        None,
        None,
        None,
    )


def test_hangup_carries_its_cause() -> None:
    event = one(Event="Hangup", Channel="PJSIP/1-1", Uniqueid="1.1", Cause="16", Exten="100")
    assert isinstance(event, ev.Hangup)
    assert (event.cause, event.extension) == (16, "100")


def test_a_channel_event_without_its_unique_id_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="Newstate", Channel="PJSIP/1-1")) == []
    assert normalizer.invalid == {"Newstate": 1}


def test_queue_caller_abandon_says_where_and_how_long_the_caller_waited() -> None:
    event = one(
        Event="QueueCallerAbandon",
        Queue="sales",
        Channel="PJSIP/trunk-7",
        Uniqueid="1700000000.7",
        Linkedid="1700000000.6",
        CallerIDNum="5551234",
        CallerIDName="Ann",
        Position="1",
        OriginalPosition="3",
        HoldTime="45",
    )
    assert event == ev.QueueCallerAbandon(
        queue="sales",
        channel="PJSIP/trunk-7",
        unique_id="1700000000.7",
        linked_id="1700000000.6",
        caller_id_num="5551234",
        caller_id_name="Ann",
        position=1,
        original_position=3,
        hold_time=45,
    )


def test_queue_caller_join_carries_the_callers_place() -> None:
    event = one(Event="QueueCallerJoin", Queue="sales", Channel="PJSIP/trunk-7", Position="2", Count="2")
    assert event == ev.QueueCallerJoin(queue="sales", channel="PJSIP/trunk-7", position=2, count=2)


def test_a_caller_event_without_its_channel_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="QueueCallerJoin", Queue="sales")) == []
    assert normalizer.invalid == {"QueueCallerJoin": 1}


def test_a_queue_entry_without_its_channel_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="QueueEntry", Queue="sales", Position="1")) == []
    assert normalizer.invalid == {"QueueEntry": 1}


def test_agent_complete_carries_times_and_the_reason() -> None:
    event = one(
        Event="AgentComplete",
        Queue="sales",
        Interface="PJSIP/1001",
        MemberName="Alice",
        Channel="PJSIP/trunk-7",
        Uniqueid="1700000000.7",
        DestChannel="PJSIP/1001-8",
        HoldTime="4",
        TalkTime="93",
        Reason="caller",
    )
    assert event == ev.AgentComplete(
        queue="sales",
        interface="PJSIP/1001",
        member_name="Alice",
        caller_channel="PJSIP/trunk-7",
        caller_unique_id="1700000000.7",
        agent_channel="PJSIP/1001-8",
        hold_time=4,
        talk_time=93,
        reason="caller",
    )


def test_agent_ring_no_answer_carries_the_ring_time() -> None:
    event = one(Event="AgentRingNoAnswer", Queue="q", Interface="PJSIP/1", RingTime="15000")
    assert isinstance(event, ev.AgentRingNoAnswer)
    assert event.ring_time == 15000


def test_old_agent_events_name_the_member_by_location_and_the_caller_by_bridged_channel() -> None:
    event = one(Event="AgentCalled", Queue="q", Location="SIP/1", Channel="SIP/1-5", BridgedChannel="7.7")
    assert isinstance(event, ev.AgentCalled)
    assert (event.interface, event.caller_unique_id, event.agent_channel) == ("SIP/1", "7.7", "SIP/1-5")


def test_an_agent_event_without_its_member_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="AgentConnect", Queue="q", Channel="SIP/1-5")) == []
    assert normalizer.invalid == {"AgentConnect": 1}


def test_a_member_event_without_its_queue_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="QueueMemberAdded", Interface="PJSIP/1")) == []
    assert normalizer.invalid == {"QueueMemberAdded": 1}


@pytest.mark.parametrize("header", ["Interface", "Location", "Member"])
def test_the_member_is_named_by_any_of_its_header_names(header: str) -> None:
    event = one(Event="QueueMemberRemoved", Queue="q", **{header: "PJSIP/1001"})
    assert isinstance(event, ev.QueueMemberRemoved)
    assert event.interface == "PJSIP/1001"


def test_bridge_enter_names_the_bridge_and_the_channel() -> None:
    event = one(Event="BridgeEnter", BridgeUniqueid="b-1", Channel="PJSIP/1-1", Uniqueid="1.1")
    assert event == ev.BridgeEnter(bridge_id="b-1", channel="PJSIP/1-1", unique_id="1.1")


def test_an_old_bridge_id_header_names_the_bridge_too() -> None:
    assert one(Event="BridgeLeave", BridgeID="b-2", Uniqueid="1.1") == ev.BridgeLeave(
        bridge_id="b-2", channel="", unique_id="1.1"
    )
    assert one(Event="BridgeDestroy", BridgeID="b-2") == ev.BridgeDestroy(bridge_id="b-2")


def test_a_bridge_event_without_its_bridge_or_channel_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="BridgeEnter", Uniqueid="1.1")) == []
    assert normalizer.events(frame(Event="BridgeEnter", BridgeUniqueid="b-1")) == []
    assert normalizer.events(frame(Event="BridgeCreate")) == []
    assert normalizer.invalid == {"BridgeEnter": 2, "BridgeCreate": 1}


def test_old_bridge_link_puts_both_channels_in_one_pseudo_bridge() -> None:
    found = EventNormalizer().events(
        frame(
            Event="Bridge", Bridgestate="Link", Channel1="SIP/a-1", Channel2="SIP/b-2", Uniqueid1="1.1", Uniqueid2="1.2"
        )
    )
    assert found == [
        ev.BridgeEnter(bridge_id="legacy:1.1+1.2", channel="SIP/a-1", unique_id="1.1"),
        ev.BridgeEnter(bridge_id="legacy:1.1+1.2", channel="SIP/b-2", unique_id="1.2"),
    ]


def test_old_bridge_unlink_takes_both_channels_out() -> None:
    found = EventNormalizer().events(frame(Event="Bridge", Bridgestate="Unlink", Uniqueid1="1.1", Uniqueid2="1.2"))
    assert found == [
        ev.BridgeLeave(bridge_id="legacy:1.1+1.2", channel="", unique_id="1.1"),
        ev.BridgeLeave(bridge_id="legacy:1.1+1.2", channel="", unique_id="1.2"),
    ]


def test_old_bridge_without_both_channels_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="Bridge", Bridgestate="Link", Uniqueid1="1.1")) == []
    assert normalizer.invalid == {"Bridge": 1}


def test_normalize_gives_the_first_event_of_a_frame() -> None:
    first = EventNormalizer().normalize(frame(Event="Bridge", Uniqueid1="1.1", Uniqueid2="1.2"))
    assert first == ev.BridgeEnter(bridge_id="legacy:1.1+1.2", channel="", unique_id="1.1")


def test_normalize_gives_none_for_a_frame_without_an_event() -> None:
    assert EventNormalizer().normalize(frame(Event="VarSet")) is None


def test_each_unknown_event_is_counted_by_its_name() -> None:
    normalizer = EventNormalizer()
    for name in ("VarSet", "Newexten", "VarSet"):
        normalizer.events(frame(Event=name))
    assert normalizer.unknown == {"VarSet": 2, "Newexten": 1}
    assert not normalizer.invalid


def test_events_are_still_read_after_a_peer_invents_thousands_of_names() -> None:
    normalizer = EventNormalizer()
    for number in range(1500):
        normalizer.events(frame(Event=f"Invented{number}"))
    assert isinstance(normalizer.normalize(frame(Event="Hangup", Channel="PJSIP/1-1", Uniqueid="1.1")), ev.Hangup)
    assert len(normalizer.unknown) == 1500


def test_a_list_complete_event_without_a_count_has_none() -> None:
    assert one(Event="CoreShowChannelsComplete") == ev.ListComplete(name="CoreShowChannelsComplete")


def test_an_old_queue_entry_names_the_caller_by_callerid_and_has_no_unique_id() -> None:
    event = one(
        Event="QueueEntry", Queue="sales", Position="1", Channel="SIP/trunk-0001", CallerID="5551234", Wait="12"
    )
    assert event == ev.QueueEntry(queue="sales", channel="SIP/trunk-0001", position=1, caller_id_num="5551234", wait=12)
    assert isinstance(event, ev.QueueEntry)
    assert event.unique_id == ""


def test_an_agent_event_missing_its_channel_headers_reads_them_as_empty() -> None:
    new = one(Event="AgentCalled", Queue="q", Interface="PJSIP/1", DestChannel="PJSIP/1-9")
    old = one(Event="AgentCalled", Queue="q", Interface="SIP/1")
    assert isinstance(new, ev.AgentCalled)
    assert isinstance(old, ev.AgentCalled)
    assert (new.caller_channel, new.caller_unique_id, new.agent_channel) == ("", "", "PJSIP/1-9")
    assert (old.caller_channel, old.caller_unique_id, old.agent_channel) == ("", "", "")
