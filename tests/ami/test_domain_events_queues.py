"""Queue caller frames (join, leave, abandon, entries) and the queue summary → their events."""

from __future__ import annotations

from services.ami_ingest.domain import events as ev
from services.ami_ingest.domain.normalize import EventNormalizer
from tests.ami.harness import frame, one


def test_join_and_leave_are_aliases_of_queue_caller_join_and_leave() -> None:
    join = one(Event="Join", Queue="q", Channel="SIP/9-1", CallerID="555", Position="1", Uniqueid="1.1")
    leave = one(Event="Leave", Queue="q", Channel="SIP/9-1", Position="1", Count="0")
    assert isinstance(join, ev.QueueCallerJoin)
    assert join.caller_id_num == "555"
    assert isinstance(leave, ev.QueueCallerLeave)


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


def test_a_queue_summary_without_its_queue_is_invalid() -> None:
    normalizer = EventNormalizer()
    assert normalizer.events(frame(Event="QueueParams", Calls="3")) == []
    assert normalizer.invalid == {"QueueParams": 1}


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


def test_an_old_queue_entry_names_the_caller_by_callerid_and_has_no_unique_id() -> None:
    event = one(
        Event="QueueEntry", Queue="sales", Position="1", Channel="SIP/trunk-0001", CallerID="5551234", Wait="12"
    )
    assert event == ev.QueueEntry(queue="sales", channel="SIP/trunk-0001", position=1, caller_id_num="5551234", wait=12)
    assert isinstance(event, ev.QueueEntry)
    assert event.unique_id == ""
