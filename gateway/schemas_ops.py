"""The operational endpoints' answers as published schemas (see :mod:`gateway.api_schema`).

Outside ``/api``, so each model is the whole envelope, not only its ``data``.
"""

from __future__ import annotations

from typing import Any, Literal

from gateway.api_schema import Schema

__all__ = ["ERROR_CONTENT", "BackendsReady", "Live", "Ready"]

ERROR_CONTENT: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
"""A response's content that is the error envelope (``responses={503: {…, "content": ERROR_CONTENT}}``)."""


class LiveData(Schema):
    status: Literal["ok"]


class Live(Schema):
    success: Literal[True]
    data: LiveData


class ReadyData(Schema):
    ready: Literal[True]


class Ready(Schema):
    success: Literal[True]
    data: ReadyData


class BackendHealth(Schema):
    address: str
    serving: bool
    status: str


class BackendsReadyData(Schema):
    ready: Literal[True]
    backends: dict[str, BackendHealth]


class BackendsReady(Schema):
    success: Literal[True]
    data: BackendsReadyData
