"""The size and pace of every request body, checked while it arrives.

- **Size**: a body over its limit is 413 the moment it passes the limit. A ``Content-Length`` over it
  is answered before a byte of the body is read; a chunked body is counted as its chunks arrive and
  never held whole. The limit is ``GATEWAY_MAX_BODY_BYTES`` (JSON, forms), or the upload route's
  (``MEDIA_MAX_UPLOAD_BYTES`` plus the multipart framing; that route names the file limit itself).
- **Pace**: each chunk must arrive within ``GATEWAY_BODY_IDLE_SECONDS`` and the whole body within
  ``GATEWAY_BODY_TIMEOUT_SECONDS`` (uploads: ``GATEWAY_UPLOAD_TIMEOUT_SECONDS``), or the request is
  408. Once the body is complete, ``receive`` is passed through untouched: a streaming response
  waits on it for the client's disconnect for as long as the stream lasts.

Both answers carry ``Connection: close``, so the server drops the rest of the body instead of
reading it. The refusal is raised from ``receive`` as a ``fastapi.HTTPException`` subclass: FastAPI's
body parsing re-raises those untouched (anything else becomes a 400), and the gateway's error handlers
render it; a refusal that escapes the app before a response started is answered here.
Starlette's own ``RequestBodyLimitMiddleware`` counts the same way but answers in plain text and does
not time the body, hence this one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import error_response
from runtime.errors import PayloadTooLarge, RequestTimeout, SwitchboardError, grpc_status_for

__all__ = ["BodyLimit", "BodyRefused", "RequestBodyGuard", "on_body_refused"]


@dataclass(frozen=True, slots=True)
class BodyLimit:
    max_bytes: int
    timeout_seconds: float


class BodyRefused(HTTPException):
    """A body over its limit (413) or too slow (408); ``error`` is what the client is told."""

    def __init__(self, error: SwitchboardError, status_code: int) -> None:
        super().__init__(status_code=status_code, detail=error.message, headers={"Connection": "close"})
        self.error = error

    def response(self) -> Response:
        response = error_response(grpc_status_for(self.error), self.error.message, self.error.details)
        response.headers.update(self.headers or {})
        return response


def _too_large(limit: int, received: int) -> BodyRefused:
    return BodyRefused(
        PayloadTooLarge(
            f"request body is over the limit of {limit} bytes",
            details={"reason": PayloadTooLarge.__name__, "limit": limit, "received": received},
        ),
        413,
    )


def _too_slow(received: int, why: str) -> BodyRefused:
    return BodyRefused(
        RequestTimeout(
            f"request body not received in time: {why}",
            details={"reason": RequestTimeout.__name__, "received": received},
        ),
        408,
    )


class _PacedBody:
    """``receive`` for one request: counts and times the body, then steps aside."""

    def __init__(self, receive: Receive, limit: BodyLimit, idle_seconds: float) -> None:
        self._receive = receive
        self._limit = limit
        self._idle_seconds = idle_seconds
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._deadline = loop.time() + limit.timeout_seconds
        self.received = 0
        self.complete = False

    async def __call__(self) -> Message:
        if self.complete:
            return await self._receive()
        left = self._deadline - self._loop.time()
        if left <= 0:
            raise _too_slow(self.received, f"the whole body must arrive within {self._limit.timeout_seconds:g} s")
        wait = min(self._idle_seconds, left)
        try:
            async with asyncio.timeout(wait):
                message = await self._receive()
        except TimeoutError:
            why = (
                f"no data for {self._idle_seconds:g} s"
                if wait == self._idle_seconds
                else f"the whole body must arrive within {self._limit.timeout_seconds:g} s"
            )
            raise _too_slow(self.received, why) from None
        if message["type"] != "http.request":  # http.disconnect
            self.complete = True
            return message
        self.received += len(message.get("body", b""))
        if self.received > self._limit.max_bytes:
            raise _too_large(self._limit.max_bytes, self.received)
        if not message.get("more_body", False):
            self.complete = True
        return message


class RequestBodyGuard:
    """Pure ASGI middleware enforcing ``default`` on every HTTP request, ``by_path`` on exact paths."""

    def __init__(self, app: ASGIApp, *, default: BodyLimit, by_path: dict[str, BodyLimit], idle_seconds: float) -> None:
        self.app = app
        self.default = default
        self.by_path = by_path
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit.max_bytes:
            await _answer(_too_large(limit.max_bytes, int(declared)), send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _PacedBody(receive, limit, self.idle_seconds), send_tracked)
        except BodyRefused as refused:
            if started:
                raise
            await _answer(refused, send)


async def _answer(refused: BodyRefused, send: Send) -> None:
    response = refused.response()
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


async def on_body_refused(_: Request, exc: Exception) -> Response:
    """The app's exception handler for a refusal raised while a route read its body."""
    assert isinstance(exc, BodyRefused)
    return exc.response()
