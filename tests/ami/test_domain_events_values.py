"""How header values read: Asterisk's flag spellings, tolerant numbers, durations, unknown caller ids."""

from __future__ import annotations

import pytest

from services.ami_ingest.domain import events as ev
from tests.ami.harness import one


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


def test_unknown_caller_id_reads_as_empty() -> None:
    event = one(Event="Newchannel", Channel="PJSIP/1-1", Uniqueid="1.1", CallerIDNum="<unknown>")
    assert isinstance(event, ev.Newchannel)
    assert event.caller_id_num == ""


def test_core_show_channel_duration_is_read_in_seconds() -> None:
    event = one(Event="CoreShowChannel", Channel="PJSIP/1-1", Uniqueid="1.1", Duration="01:02:03", BridgeId="b")
    assert isinstance(event, ev.CoreShowChannel)
    assert (event.duration, event.bridge_id) == (3723, "b")


def test_a_number_written_with_a_fraction_reads_as_its_whole_part() -> None:
    event = one(Event="QueueParams", Queue="sales", Holdtime="12.7", Calls="", Completed="many")
    assert isinstance(event, ev.QueueParams)
    assert (event.hold_time, event.calls, event.completed) == (12, 0, None)


@pytest.mark.parametrize(("said", "read"), [(" 87.5 ", 87.5), ("", 0.0), ("n/a", None)])
def test_a_service_level_percentage_reads_as_a_float(said: str, read: float | None) -> None:
    event = one(Event="QueueParams", Queue="sales", ServicelevelPerf=said)
    assert isinstance(event, ev.QueueParams)
    assert event.service_level_perf == read


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
