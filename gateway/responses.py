"""The gateway's JSON response: orjson, because a 200-operator snapshot is ~100 KiB of JSON and
the stdlib encoder alone would take most of the 5 ms p99 budget of ``/api/queue-status/snapshot``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

__all__ = ["FastJSONResponse", "dumps"]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
