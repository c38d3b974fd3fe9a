"""docs/api-conventions.md enforced on real answers of the status routes (envelope, camelCase,
times as epoch ms under …At, durations under …Ms, null for never), errors included."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.conventions import convention_breaks

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
