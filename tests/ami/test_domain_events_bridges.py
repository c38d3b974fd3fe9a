"""Bridge frames → bridge events; an old Bridge link/unlink becomes enter/leave of one pseudo bridge."""

from __future__ import annotations

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.normalize import EventNormalizer
from tests.ami.harness import frame, one


def test_old_bridge_link_gives_two_bridge_enters() -> None:
    found = EventNormalizer().events(
        frame(Event="Bridge", Bridgestate="Link", Channel1="A", Channel2="B", Uniqueid1="1", Uniqueid2="2")
    )
    assert [type(e) for e in found] == [ev.BridgeEnter, ev.BridgeEnter]


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
