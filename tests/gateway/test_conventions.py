"""docs/api-conventions.md enforced on real answers of the status routes (envelope, camelCase,
times as epoch ms under …At, durations under …Ms, null for never), errors included."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from devsupport.auth import AUTH_HEADERS
from tests.gateway.conventions import convention_breaks
from tests.gateway.harness import LiveGateway

API = "/api/queue-status"
SAMPLE = [
    ("GET", "/operators", 200),
    ("GET", "/operators?queue=sales&paused=false", 200),
    ("GET", "/operators/queue/support", 200),
    ("GET", "/operators/Local/1001@agents", 200),
    ("GET", "/queues", 200),
    ("GET", "/queues/sales", 200),
    ("GET", "/channels", 200),
    ("GET", "/snapshot", 200),
    ("GET", "/sync/status", 200),
    ("POST", "/sync/resync", 200),
    ("GET", "/operators/PJSIP/9999", 404),
    ("GET", "/operators/queue/nope", 404),
    ("GET", "/queues/nope", 404),
    ("GET", "/operators?status=sleeping", 400),
    ("GET", "/operators?page_size=1", 400),
]


@pytest.mark.parametrize(("method", "path", "status"), SAMPLE, ids=[f"{m} {p}" for m, p, _ in SAMPLE])
async def test_status_answers_follow_the_json_convention(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, API + path)
    assert response.status_code == status, response.text
    assert convention_breaks(response.json()) == []


def test_the_check_catches_what_the_convention_forbids() -> None:
    bad = {
        "success": True,
        "data": {"member_id": "x", "lastCall": 0, "startedAt": 1_700_000_000.5, "waitMs": 1.5, "loginTime": 3},
        "count": 1,
    }
    problems = convention_breaks(bad)
    assert "$.data.member_id: not camelCase" in problems
    assert any(p.startswith("$.data.startedAt:") for p in problems)
    assert any(p.startswith("$.data.waitMs:") for p in problems)
    assert any(p.startswith("$.data.loginTime:") for p in problems)
    assert any(p.startswith("envelope keys") for p in problems)


def test_a_notification_attempts_at_is_the_one_key_named_at_and_it_is_still_epoch_ms() -> None:
    at = 1_700_000_000_000
    listed = {"success": True, "data": [{"attempts": [{"at": at, "attemptedAt": at}, {"at": None}]}]}
    assert convention_breaks(listed) == []
    assert convention_breaks({"success": True, "data": {"attempts": [{"at": 1_700_000_000.5}]}}) == [
        "$.data.attempts[0].at: 1700000000.5 is not epoch milliseconds (int) or null"
    ]
    elsewhere = convention_breaks({"success": True, "data": {"at": at, "attempts": [{"ok": True, "job": {"at": at}}]}})
    assert elsewhere == [
        "$.data.at: a time must be named …At (epoch ms) or …Ms (duration)",
        "$.data.attempts[0].job.at: a time must be named …At (epoch ms) or …Ms (duration)",
    ]


async def test_every_api_operation_refuses_an_unknown_query_parameter_naming_it(live_gateway: LiveGateway) -> None:
    async with httpx.AsyncClient(base_url=live_gateway.url, timeout=10, headers=AUTH_HEADERS) as client:
        spec = (await client.get("/openapi.json")).json()
        answered: dict[str, tuple[int, object]] = {}
        for template, operations in spec["paths"].items():
            if not template.startswith("/api"):
                continue
            path = re.sub(r"\{[^}]+\}", "x", template)
            for method in operations:
                async with client.stream(method.upper(), path, params={"bogus": "1"}) as response:
                    body = json.loads(await response.aread()) if response.status_code == 400 else None
                field = body["error"]["details"].get("field") if body else None
                answered[f"{method.upper()} {template}"] = (response.status_code, field)
    assert len(answered) > 40
    assert {op: got for op, got in answered.items() if got != (400, "bogus")} == {}
