"""A minimal Server-Sent Events reader for tests (event, id, data; comments skipped)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    event: str
    id: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    kind, ident = "message", ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(kind, ident, "\n".join(data))
            kind, ident, data = "message", "", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "id":
                ident = value
            elif name == "data":
                data.append(value)
