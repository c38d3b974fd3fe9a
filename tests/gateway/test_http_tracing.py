"""The gateway's request spans are the ones opentelemetry-instrumentation-asgi's middleware makes.

:class:`gateway.http_tracing.HttpTracing` replaces the library's ``OpenTelemetryMiddleware``
(configured as the gateway had it: no receive/send spans) for speed; each request below goes
through both, and the spans must agree in everything but their ids and times.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.types import Receive, Scope, Send

from gateway.http_tracing import HttpTracing

EXCLUDED = "healthz,readyz,metrics,static"


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the status named in the path (``/status/503``); ``/raise`` raises."""
    path: str = scope["path"]
    if path == "/raise":
        raise RuntimeError("the route failed")
    status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _contrib(provider: TracerProvider) -> Any:
    return OpenTelemetryMiddleware(
        _app, excluded_urls=EXCLUDED, exclude_spans=["receive", "send"], tracer_provider=provider
    )


def _ours(provider: TracerProvider) -> Any:
    return HttpTracing(_app, excluded_urls=EXCLUDED, tracer_provider=provider)


async def _spans(wrap: Callable[[TracerProvider], Any], path: str, headers: dict[str, str]) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    transport = httpx.ASGITransport(wrap(provider), raise_app_exceptions=False, client=("10.0.0.7", 51234))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test:8080") as client:
        await client.get(path, headers=headers)
    return list(exporter.get_finished_spans())


def _comparable(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "status": (span.status.status_code, span.status.description),
        "parent": None if span.parent is None else (span.parent.trace_id, span.parent.span_id),
        "trace_id": span.context.trace_id if span.parent is not None else None,
        "events": [(event.name, dict(event.attributes or {}).get("exception.message")) for event in span.events],
        "scope": (span.instrumentation_scope.name, span.instrumentation_scope.version,
                  span.instrumentation_scope.schema_url) if span.instrumentation_scope else None,
    }  # fmt: skip


TRACE_ID, PARENT_ID = secrets.token_hex(16), secrets.token_hex(8)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/queue-status/snapshot", {}),
        ("/api/queue-status/snapshot", {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "a=1"}),
        ("/api/queue-status/operators?queue=sales%20desk&paused=true", {"user-agent": "Googlebot/2.1"}),
        ("/status/404", {"user-agent": "curl/8.5"}),
        ("/status/503", {}),
        ("/raise", {}),
        ("/healthz", {}),
        ("/static/queues.js", {}),
    ],
)
async def test_a_request_span_is_the_one_the_asgi_instrumentation_makes(path: str, headers: dict[str, str]) -> None:
    theirs = [_comparable(span) for span in await _spans(_contrib, path, headers)]
    ours = [_comparable(span) for span in await _spans(_ours, path, headers)]
    assert ours == theirs
    if path.startswith(("/healthz", "/static")):
        assert ours == []
    else:
        [span] = ours
        assert span["kind"] is SpanKind.SERVER
