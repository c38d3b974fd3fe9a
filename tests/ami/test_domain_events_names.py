"""Which frames become events: every name Switchboard reads, case-blind; unknown and invalid ones counted."""

from __future__ import annotations

import pytest

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.normalize import EVENT_BUILDERS, EventNormalizer
from tests.ami.harness import frame, one


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
