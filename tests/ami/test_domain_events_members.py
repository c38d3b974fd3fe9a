"""Queue member frames → member events, under every header name Asterisk versions gave the member."""

from __future__ import annotations

import pytest

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.normalize import EventNormalizer
from tests.ami.harness import frame, one

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


def test_a_member_event_without_its_queue_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="QueueMemberAdded", Interface="PJSIP/1")) == []
    assert normalizer.invalid == {"QueueMemberAdded": 1}


@pytest.mark.parametrize("header", ["Interface", "Location", "Member"])
def test_the_member_is_named_by_any_of_its_header_names(header: str) -> None:
    event = one(Event="QueueMemberRemoved", Queue="q", **{header: "PJSIP/1001"})
    assert isinstance(event, ev.QueueMemberRemoved)
    assert event.interface == "PJSIP/1001"
