"""The gateway's JSON response: orjson, because a 200-operator snapshot is ~100 KiB of JSON and
the stdlib encoder alone would take most of the 5 ms p99 budget of ``/api/queue-status/snapshot``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

__all__ = ["FastJSONResponse", "dumps", "ok"]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(data: Any, *, status_code: int = 200, **meta: Any) -> FastJSONResponse:
    """The envelope of every success: ``{"success": true, "data": …, "meta"?: {…}}``.

    ``meta`` (``count``, ``page`` {page, pageSize, total}, ``source``, ``stale``, ``asOf`` …) is
    top-level and present only when there is some; failures are :mod:`gateway.errors`' body.
    """
    body = {"success": True, "data": data, **({"meta": meta} if meta else {})}
    return FastJSONResponse(body, status_code=status_code)
