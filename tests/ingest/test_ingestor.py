"""The ingest loop: live events and resync lists, ordered by the client's sequence numbers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from services.ami_ingest.ami.batch import AmiEvent, EventBatch
from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.transport import ActionHeaders, ActionResult
from services.ami_ingest.domain.model import OperatorUpserted, StateChange
from services.ami_ingest.ingestor import Ingestor

ALICE = "Local/1001@agents"


def member_headers(event: str, *, paused: bool, reason: str = "", interface: str = ALICE) -> list[tuple[str, str]]:
    names = ("Name", "Location") if event == "QueueMember" else ("MemberName", "Interface")
    return [
        ("Event", event),
        ("Queue", "sales"),
        (names[0], "Alice Smith"),
        (names[1], interface),
        ("StateInterface", "Custom:agent1001"),
        ("Membership", "static"),
        ("Penalty", "0"),
        ("CallsTaken", "0"),
        ("LastCall", "0"),
        ("LastPause", "0"),
        ("LoginTime", "0"),
        ("InCall", "0"),
        ("Status", "1"),
        ("Paused", "1" if paused else "0"),
        ("PausedReason", reason),
        ("Wrapuptime", "0"),
    ]


QUEUE_PARAMS = [("Event", "QueueParams"), ("Queue", "sales"), ("Strategy", "ringall"), ("Calls", "0")]


class ScriptedConnection:
    """An AMI connection whose answers and live events carry the sequence numbers a test chooses."""

    def __init__(self) -> None:
        self.events_queue: asyncio.Queue[EventBatch | None] = asyncio.Queue()
        self.queued = 0
        self.results: dict[str, ActionResult] = {}
        self.during: dict[str, list[tuple[int, list[tuple[str, str]]]]] = {}
        self.during_in_one_read: set[str] = set()
        self.fail_with: Exception | None = None

    def live(self, seq: int, headers: list[tuple[str, str]]) -> None:
        self.live_read([(seq, headers)])

    def live_read(self, events: Sequence[tuple[int, list[tuple[str, str]]]]) -> None:
        """Live events that arrived in one socket read (one batch)."""
        batch = EventBatch.of([AmiEvent(seq, 1, Frame(tuple(headers))) for seq, headers in events])
        self.queued += len(batch)
        self.events_queue.put_nowait(batch)

    def answer(self, action: str, response_seq: int, items: Sequence[tuple[int, list[tuple[str, str]]]]) -> None:
        action_id = f"id-{action}"
        frames = tuple(Frame((*headers, ("ActionID", action_id))) for _, headers in items)
        end_seq = (items[-1][0] if items else response_seq) + 1
        complete = Frame((("Event", f"{action}Complete"), ("ActionID", action_id), ("EventList", "Complete")))
        response = Frame((("Response", "Success"), ("ActionID", action_id), ("EventList", "start")))
        self.results[action] = ActionResult(
            action, action_id, response, response_seq, frames, tuple(s for s, _ in items), complete, end_seq
        )

    async def send_action(
        self, action: str, headers: ActionHeaders = (), *, response_timeout: float | None = None
    ) -> ActionResult:
        if self.fail_with is not None:
            raise self.fail_with
        # Like the real client: live events that arrived while the answer streamed are queued
        # before the answer completes.
        during = self.during.pop(action, [])
        if action in self.during_in_one_read:
            self.live_read(during)
        else:
            for seq, headers in during:
                self.live(seq, headers)
        return self.results[action]

    async def events(self) -> AsyncIterator[AmiEvent]:
        async for batch in self.event_batches():
            for event in batch:
                yield event

    async def event_batches(self) -> AsyncIterator[EventBatch]:
        while (batch := await self.events_queue.get()) is not None:
            self.queued -= len(batch)
            yield batch

    @property
    def queued_events(self) -> int:
        return self.queued


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[StateChange]]] = []

    def publish(self, changes: Sequence[StateChange], *, emitted_at: float | None = None) -> None:
        self.calls.append(("changes", list(changes)))

    def publish_replace_all(self, changes: Sequence[StateChange], *, emitted_at: float | None = None) -> None:
        self.calls.append(("replace_all", list(changes)))


@pytest.fixture
async def running() -> AsyncIterator[tuple[Ingestor, ScriptedConnection, RecordingSink]]:
    sink = RecordingSink()
    ingestor = Ingestor(sink, clock=lambda: 1_800_000_000.0)
    connection = ScriptedConnection()
    tasks = [asyncio.create_task(ingestor.run()), asyncio.create_task(ingestor.pump(connection))]
    yield ingestor, connection, sink
    ingestor.stop()
    connection.events_queue.put_nowait(None)
    await asyncio.wait_for(asyncio.gather(*tasks), 2)


async def settle(ingestor: Ingestor) -> None:
    # Event-loop turns, not time: the ingest loop and the scripted connection wait on nothing else.
    for _ in range(200):
        await asyncio.sleep(0)
        if ingestor.idle:
            return
    raise AssertionError("ingest loop did not settle")


def operator_paused(ingestor: Ingestor) -> tuple[bool, str]:
    op = ingestor.state.operators[("sales", ALICE)]
    return op.paused, op.paused_reason


def script_lists(connection: ScriptedConnection, *, start: int, paused: bool) -> None:
    connection.answer(
        "QueueStatus", start, [(start + 1, QUEUE_PARAMS), (start + 2, member_headers("QueueMember", paused=paused))]
    )
    connection.answer("CoreShowChannels", start + 10, [])


async def test_nothing_is_published_before_the_first_resync(running: Any) -> None:
    ingestor, connection, sink = running
    connection.live(1, member_headers("QueueMemberPause", paused=True, reason="early"))
    await settle(ingestor)
    assert sink.calls == []
    assert ingestor.full_state() is None


async def test_a_resync_publishes_the_lists_as_one_replace_all(running: Any) -> None:
    ingestor, connection, sink = running
    script_lists(connection, start=10, paused=False)
    await ingestor.resync(connection)
    kind, rows = sink.calls[-1]
    assert kind == "replace_all"
    assert [r.operator.member_id for r in rows if isinstance(r, OperatorUpserted)] == [ALICE]
    assert ingestor.ready


async def test_live_events_after_the_first_resync_are_published_in_order(running: Any) -> None:
    ingestor, connection, sink = running
    script_lists(connection, start=10, paused=False)
    await ingestor.resync(connection)
    connection.live(30, member_headers("QueueMemberPause", paused=True, reason="lunch"))
    connection.live(31, member_headers("QueueMemberPause", paused=False))
    await settle(ingestor)
    published = [r.operator.paused for kind, rows in sink.calls[1:] for r in rows if isinstance(r, OperatorUpserted)]
    assert published == [True, False]


async def test_an_event_that_arrived_while_the_lists_streamed_is_replayed_on_top(running: Any) -> None:
    ingestor, connection, sink = running
    # Numbered between the list's response (10) and its member item (12): the item may or may
    # not include it, so it is applied again after the lists.
    script_lists(connection, start=10, paused=False)
    connection.during["QueueStatus"] = [(11, member_headers("QueueMemberPause", paused=True, reason="lunch"))]
    await ingestor.resync(connection)
    assert operator_paused(ingestor) == (True, "lunch")
    kind, rows = sink.calls[-1]
    assert kind == "replace_all"
    assert [r.operator.paused for r in rows if isinstance(r, OperatorUpserted)] == [True]


async def test_a_read_spanning_the_lists_end_is_cut_there(running: Any) -> None:
    ingestor, connection, sink = running
    # One socket read holds an event numbered before the last list's end (21) and one after:
    # the first is replayed inside the resync, the second applied on top of the published truth.
    script_lists(connection, start=10, paused=False)
    connection.during["CoreShowChannels"] = [
        (15, member_headers("QueueMemberPause", paused=True, reason="during")),
        (25, member_headers("QueueMemberPause", paused=True, reason="after")),
    ]
    connection.during_in_one_read.add("CoreShowChannels")
    await ingestor.resync(connection)
    await settle(ingestor)
    kinds = [kind for kind, _ in sink.calls]
    assert kinds == ["replace_all", "changes"]
    full = [r.operator.paused_reason for r in sink.calls[0][1] if isinstance(r, OperatorUpserted)]
    later = [r.operator.paused_reason for r in sink.calls[1][1] if isinstance(r, OperatorUpserted)]
    assert (full, later) == (["during"], ["after"])
    assert operator_paused(ingestor) == (True, "after")


async def test_an_event_older_than_the_lists_does_not_override_them(running: Any) -> None:
    ingestor, connection, _ = running
    connection.live(5, member_headers("QueueMemberPause", paused=True, reason="old news"))
    await settle(ingestor)
    script_lists(connection, start=10, paused=False)
    await ingestor.resync(connection)
    assert operator_paused(ingestor) == (False, "")


async def test_rows_missing_from_the_lists_disappear(running: Any) -> None:
    ingestor, connection, sink = running
    connection.answer(
        "QueueStatus",
        10,
        [
            (11, QUEUE_PARAMS),
            (12, member_headers("QueueMember", paused=False)),
            (13, member_headers("QueueMember", paused=False, interface="Local/1002@agents")),
        ],
    )
    connection.answer("CoreShowChannels", 20, [])
    await ingestor.resync(connection)
    assert len(ingestor.state.operators) == 2
    script_lists(connection, start=40, paused=False)  # 1002 has left
    await ingestor.resync(connection)
    assert set(ingestor.state.operators) == {("sales", ALICE)}
    kind, rows = sink.calls[-1]
    assert kind == "replace_all"
    assert {r.operator.member_id for r in rows if isinstance(r, OperatorUpserted)} == {ALICE}


async def test_a_failed_resync_applies_what_it_held_back(running: Any) -> None:
    ingestor, connection, _ = running
    script_lists(connection, start=10, paused=False)
    await ingestor.resync(connection)
    connection.fail_with = TimeoutError("no answer")
    resync = asyncio.create_task(ingestor.resync(connection))
    await asyncio.sleep(0)  # one loop turn: the resync starts (and holds events back) before we go on
    with pytest.raises(TimeoutError):
        await resync
    connection.live(50, member_headers("QueueMemberPause", paused=True, reason="after failure"))
    await settle(ingestor)
    assert operator_paused(ingestor) == (True, "after failure")


async def test_reset_forgets_the_state_until_the_next_resync(running: Any) -> None:
    ingestor, connection, _ = running
    script_lists(connection, start=10, paused=False)
    await ingestor.resync(connection)
    ingestor.reset()
    assert ingestor.full_state() is None
    assert not ingestor.state.operators
