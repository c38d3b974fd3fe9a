"""Fuzz the gateway's HTTP API from its own OpenAPI schema (schemathesis): no 5xx, no crash.

The gateway runs on a real port in front of real services, twice: the status and queue admin
routes against the real status and queue admin; the media and notification routes against the
real media and notify services. Every operation gets a bounded number of generated requests
(authenticated as admin, so they reach the code behind the auth check). The counts are printed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok

from devsupport.auth import AUTH_HEADERS
from gateway.app import create_app
from gateway.settings import GatewaySettings
from runtime.queue.registry import declare
from services.workflow.queue import workflow_queue
from services.workflow.settings import WorkflowSettings
from tests.fuzz.harness import edge_services, real_backends
from tests.gateway.harness import LiveGateway, served

EXAMPLES_PER_OPERATION = 12
EDGE_ROUTES = ("/api/admin/media", "/api/notifications", "/api/users", "/api/push", "/api/sms")
"""The media and notify routes (fuzzed against those services; the others against status and queue admin)."""
SERVER_SENT_EVENTS = ("/stream", "/events")
"""Endpoints that answer for ever (schemathesis reads a whole body); their own tests drive them."""


def fuzz(base_url: str, schema_document: dict[str, Any], *, edge: bool) -> tuple[int, list[str]]:
    """Every operation of the media/notify routes (``edge``) or of the others,
    EXAMPLES_PER_OPERATION generated cases each; (cases run, 5xx answers)."""
    schema = schemathesis.openapi.from_dict(schema_document)
    ran = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"schema: {result.err()}")
            continue
        operation = result.ok()
        if operation.path.startswith(EDGE_ROUTES) is not edge or operation.path.endswith(SERVER_SENT_EVENTS):
            continue

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            nonlocal ran
            ran += 1
            response = case.call(base_url=base_url, headers=AUTH_HEADERS, timeout=15)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

        check()
    return ran, failures


@pytest.mark.timeout(600)
async def test_generated_requests_never_get_a_server_error(redis_url: str, tmp_path: Path) -> None:
    async with real_backends(redis_url, tmp_path) as backends:
        from redis.asyncio import Redis

        redis = Redis.from_url(redis_url)
        await declare(redis, workflow_queue(WorkflowSettings(redis_url=redis_url)))
        await redis.aclose()
        names = {f"{name}_addr": address for name, address in backends.addresses.items()}
        app = create_app(GatewaySettings(**names, rpc_timeout_seconds=10.0, sse_ping_seconds=1.0))  # type: ignore[arg-type]
        live = LiveGateway(app)
        try:
            await live.start()
            ran, failures = await asyncio.to_thread(fuzz, live.url, app.openapi(), edge=False)
        finally:
            await live.stop()
    print(f"schemathesis: {ran} generated requests, {len(failures)} answered 5xx")
    assert ran > 0
    assert failures == []


@pytest.mark.timeout(600)
async def test_generated_media_and_notification_requests_never_get_a_server_error(
    redis_url: str, tmp_path: Path
) -> None:
    async with edge_services(redis_url, tmp_path) as addresses:
        names = {f"{name}_addr": address for name, address in addresses.items()}
        app = create_app(GatewaySettings(**names, rpc_timeout_seconds=10.0, sse_ping_seconds=1.0))  # type: ignore[arg-type]
        async for live in served(app):
            ran, failures = await asyncio.to_thread(fuzz, live.url, app.openapi(), edge=True)
    print(f"schemathesis (media, notifications): {ran} generated requests, {len(failures)} answered 5xx")
    assert ran > 0
    assert failures == []
