"""HTTP credentials: bearer tokens and browser sessions, CSRF on state changes, refusals logged
without the credential, the snapshot fast path answering nobody without ``read``."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
from fastapi import FastAPI

from devsupport.auth import BOOTSTRAP_TOKEN
from gateway.app import create_app
from runtime.auth.sessions import SESSION_COOKIE
from tests.auth.harness import Keys
from tests.gateway.harness import Backends


@pytest.fixture
async def app(backends: Backends, keys: Keys) -> AsyncIterator[FastAPI]:
    application = create_app(backends.settings(database_url=keys.database_url, gateway_cookie_secure=False))
    async with application.router.lifespan_context(application):
        yield application


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test")


async def log_in(client: httpx.AsyncClient, token: str) -> str:
    response = await client.post("/login", data={"token": token, "next": "/admin/queues"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin/queues"
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    page = await client.get("/admin/queues")
    assert page.status_code == 200
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


async def test_anonymous_api_calls_get_401_json_and_browsers_get_the_login_form(app: FastAPI) -> None:
    async with client_for(app) as client:
        api = await client.get("/api/queue-status/snapshot")
        assert api.status_code == 401
        assert api.headers["www-authenticate"] == "Bearer"
        assert api.json()["error"]["code"] == "UNAUTHENTICATED"
        page = await client.get("/dashboard", headers={"Accept": "text/html"})
        assert page.status_code == 401
        assert 'id="login-form"' in page.text


async def test_a_read_key_reads_but_cannot_clear(app: FastAPI, keys: Keys) -> None:
    async with client_for(app) as client:
        headers = {"Authorization": f"Bearer {keys.read}"}
        assert (await client.get("/api/queue-status/snapshot", headers=headers)).status_code == 200
        with structlog.testing.capture_logs() as logs:
            refused = await client.delete("/api/queue-status/clear", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "PERMISSION_DENIED"
    [line] = [entry for entry in logs if entry["event"] == "auth refused"]
    assert line["path"] == "/api/queue-status/clear"
    assert "needs scope admin" in line["reason"]
    assert keys.read not in json.dumps(logs, default=str)


async def test_a_session_needs_the_csrf_token_and_a_same_origin_for_state_changes(app: FastAPI) -> None:
    async with client_for(app) as client:
        csrf = await log_in(client, BOOTSTRAP_TOKEN)
        assert (await client.get("/api/queue-status/snapshot")).status_code == 200
        without = await client.delete("/api/queue-status/clear")
        assert without.status_code == 403
        assert "X-CSRF-Token" in without.json()["error"]["message"]
        wrong = await client.delete("/api/queue-status/clear", headers={"X-CSRF-Token": "forged"})
        assert wrong.status_code == 403
        cross = await client.delete(
            "/api/queue-status/clear", headers={"X-CSRF-Token": csrf, "Origin": "https://attacker.example"}
        )
        assert cross.status_code == 403
        same = await client.delete(
            "/api/queue-status/clear", headers={"X-CSRF-Token": csrf, "Origin": "http://gateway.test"}
        )
        assert same.status_code == 200


async def test_a_forged_session_cookie_is_no_session(app: FastAPI) -> None:
    async with client_for(app) as client:
        client.cookies.set(SESSION_COOKIE, "eyJuIjoiYm9vdHN0cmFwIn0.forged.signature")
        assert (await client.get("/api/queue-status/snapshot")).status_code == 401


async def test_revoking_a_key_ends_its_sessions(app: FastAPI, keys: Keys) -> None:
    app.state.auth.authenticator.cache_seconds = 0
    async with client_for(app) as client:
        await log_in(client, keys.operate)
        assert (await client.get("/api/queue-status/snapshot")).status_code == 200
        await keys.store.revoke_key(keys.operate.split("_")[1])
        assert (await client.get("/api/queue-status/snapshot")).status_code == 401


async def test_a_bad_login_is_refused_and_a_logout_ends_the_session(app: FastAPI) -> None:
    async with client_for(app) as client:
        refused = await client.post("/login", data={"token": "guess", "next": "/dashboard"})
        assert refused.status_code == 401
        assert "not accepted" in refused.text
        offsite = await client.post("/login", data={"token": BOOTSTRAP_TOKEN, "next": "//attacker.example/x"})
        assert offsite.headers["location"] == "/dashboard"  # never an open redirect
        csrf = await log_in(client, BOOTSTRAP_TOKEN)
        out = await client.post("/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert (await client.get("/api/queue-status/snapshot")).status_code == 401


async def test_state_changes_and_logins_are_written_to_the_audit_log(app: FastAPI, keys: Keys) -> None:
    async with client_for(app) as client:
        await client.post("/login", data={"token": "guess"})
        await client.delete("/api/queue-status/clear", headers={"Authorization": f"Bearer {keys.read}"})
        await client.delete("/api/queue-status/clear", headers={"Authorization": f"Bearer {keys.admin}"})
    entries = await keys.store.audit_entries(limit=10)
    summary = [(e.actor.split(" ")[0], e.action, e.outcome) for e in reversed(entries)]
    read_id, admin_id = keys.read.split("_")[1], keys.admin.split("_")[1]
    assert summary == [
        ("anonymous", "login", "refused"),
        (f"key:{read_id}", "DELETE /api/queue-status/clear", "refused"),
        (f"key:{admin_id}", "DELETE /api/queue-status/clear", "ok"),
    ]
    assert all(e.at > 0 for e in entries)
