"""Agent frames (called, connect, complete, ring no answer) → events naming the member and both call legs."""

from __future__ import annotations

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.normalize import EventNormalizer
from tests.ami.harness import frame, one


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


def test_an_agent_event_missing_its_channel_headers_reads_them_as_empty() -> None:
    new = one(Event="AgentCalled", Queue="q", Interface="PJSIP/1", DestChannel="PJSIP/1-9")
    old = one(Event="AgentCalled", Queue="q", Interface="SIP/1")
    assert isinstance(new, ev.AgentCalled)
    assert isinstance(old, ev.AgentCalled)
    assert (new.caller_channel, new.caller_unique_id, new.agent_channel) == ("", "", "PJSIP/1-9")
    assert (old.caller_channel, old.caller_unique_id, old.agent_channel) == ("", "", "")
