"""Frame: an immutable, hashable, picklable value read by event, response and action id."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.wire import FrameParser
from tests.ami.harness import wire


def test_frame_properties_read_event_response_and_action_id() -> None:
    only = Frame((("Event", "X"), ("ActionID", "9")))
    assert (only.event, only.response, only.action_id) == ("X", None, "9")


def test_frame_is_immutable() -> None:
    only = Frame((("Event", "X"),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        only.headers = ()  # type: ignore[misc]


def test_frame_from_flat_equals_frame_from_pairs() -> None:
    assert Frame.from_flat(("Event", "X", "A", "1")) == Frame((("Event", "X"), ("A", "1")))
    assert Frame.from_flat(("Event", "X")).headers == (("Event", "X"),)


def test_frame_from_flat_rejects_odd_length() -> None:
    with pytest.raises(ValueError, match="even"):
        Frame.from_flat(("Event",))


def test_frame_get_skips_values_spelled_like_the_key() -> None:
    only = Frame((("Note", "Event"), ("Event", "Real")))
    assert only.get("Event") == "Real"


def test_frame_survives_pickling_and_hashing() -> None:
    only = FrameParser().feed(wire(("Event", "X"), ("A", "é")))[0]
    assert pickle.loads(pickle.dumps(only)) == only
    assert len({only, Frame((("Event", "X"), ("A", "é")))}) == 1
