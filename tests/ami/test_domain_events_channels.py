"""Channel and device frames → channel events, including the header names of older Asterisk versions."""

from __future__ import annotations

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.normalize import EventNormalizer
from tests.ami.harness import frame, one


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
