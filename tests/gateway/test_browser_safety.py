"""Browser safety: only allowed Host names, a strict CSP with no framing, no sniffing, no wildcard CORS."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.harness import Backends, client_for


async def test_a_foreign_host_name_is_refused_but_probes_by_ip_still_answer(backends: Backends) -> None:
    async for client in client_for(create_app(backends.settings())):
        rebinding = await client.get("/api/queue-status/snapshot", headers={"Host": "attacker.example"})
        assert rebinding.status_code == 400
        assert rebinding.json()["error"]["message"] == "host not allowed"
        assert (await client.get("/api/queue-status/snapshot")).status_code == 200  # gateway.test is allowed
        probe = await client.get("/healthz", headers={"Host": "10.1.2.3:8080"})
        assert probe.status_code == 200


async def test_subdomain_patterns_allow_subdomains_only(backends: Backends) -> None:
    app = create_app(backends.settings(gateway_allowed_hosts=["*.example.com"]))
    async for client in client_for(app):
        assert (await client.get("/healthz", headers={"Host": "ops.example.com"})).status_code == 200
        assert (await client.get("/api/queues", headers={"Host": "ops.example.com"})).status_code != 400
        assert (await client.get("/api/queues", headers={"Host": "example.com.attacker.net"})).status_code == 400
        assert (await client.get("/api/queues", headers={"Host": "gateway.test"})).status_code == 400


@pytest.mark.parametrize("path", ["/dashboard", "/api/queue-status/snapshot", "/login", "/static/queues.js"])
async def test_every_answer_carries_the_policy_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_no_cross_origin_read_is_allowed_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/queue-status/snapshot", headers={"Origin": "https://attacker.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        "/api/queue-status/clear",
        headers={"Origin": "https://attacker.example", "Access-Control-Request-Method": "DELETE"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_listed_origins_get_cors_and_others_do_not(backends: Backends) -> None:
    app = create_app(backends.settings(gateway_cors_origins=["https://ops.example.com"]))
    async for client in client_for(app):
        ours = await client.get("/api/queue-status/snapshot", headers={"Origin": "https://ops.example.com"})
        assert ours.headers["access-control-allow-origin"] == "https://ops.example.com"
        theirs = await client.get("/api/queue-status/snapshot", headers={"Origin": "https://attacker.example"})
        assert "access-control-allow-origin" not in theirs.headers


def test_a_wildcard_cors_origin_is_refused() -> None:
    with pytest.raises(ValidationError, match="exact origins"):
        GatewaySettings(gateway_cors_origins="*")  # type: ignore[arg-type]
