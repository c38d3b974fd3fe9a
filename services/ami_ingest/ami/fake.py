"""An in-memory :class:`~services.ami_ingest.ami.client.AmiConnection` for unit tests.

Tests script the answers (``answers[action] = (response_headers, [item_headers, ...])``) and
push live events; sequence numbers are shared between events and answers exactly as the real
client numbers them, so resync logic can be tested without sockets.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence

from services.ami_ingest.ami.batch import AmiEvent, EventBatch
from services.ami_ingest.ami.frame import Frame
from services.ami_ingest.ami.transport import ActionHeaders, ActionResult

HeaderList = Sequence[tuple[str, str]]


class FakeAmiConnection:
    def __init__(self) -> None:
        self.answers: dict[str, tuple[HeaderList, list[HeaderList]]] = {}
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.connection = 1
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._events: asyncio.Queue[AmiEvent | None] = asyncio.Queue()

    def push_event(self, headers: HeaderList) -> AmiEvent:
        event = AmiEvent(next(self._seq), self.connection, Frame(tuple(headers)))
        self._events.put_nowait(event)
        return event

    @property
    def queued_events(self) -> int:
        return self._events.qsize()

    def close(self) -> None:
        self._events.put_nowait(None)

    async def send_action(
        self, action: str, headers: ActionHeaders = (), *, response_timeout: float | None = None
    ) -> ActionResult:
        items = headers.items() if isinstance(headers, Mapping) else headers
        self.sent.append((action, dict(items)))
        action_id = f"fake-{next(self._ids)}"
        response, list_items = self.answers.get(action, ((("Response", "Success"),), []))
        frame = Frame((("Response", dict(response).get("Response", "Success")), ("ActionID", action_id),
                       *[(k, v) for k, v in response if k not in ("Response", "ActionID")]))  # fmt: skip
        response_seq = next(self._seq)
        frames = tuple(Frame((*item, ("ActionID", action_id))) for item in list_items)
        seqs = tuple(next(self._seq) for _ in frames)
        complete = Frame((("Event", f"{action}Complete"), ("ActionID", action_id), ("EventList", "Complete")))
        end_seq = next(self._seq) if list_items else response_seq
        return ActionResult(action, action_id, frame, response_seq, frames, seqs,
                            complete if list_items else None, end_seq)  # fmt: skip

    async def events(self) -> AsyncIterator[AmiEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def event_batches(self) -> AsyncIterator[EventBatch]:
        async for event in self.events():
            yield EventBatch.of([event])
