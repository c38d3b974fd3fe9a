"""/healthz, /readyz (the gateway's own), /readyz/backends (every backend's grpc.health.v1), /metrics, docs."""

from __future__ import annotations

import httpx
import structlog.testing

from devsupport.ports import free_port
from devsupport.waiting import wait_until
from gateway.app import create_app
from gateway.settings import BACKEND_NAMES
from tests.gateway.harness import Backends, client_for


async def test_healthz_answers_while_backends_are_down(client: httpx.AsyncClient, backends: Backends) -> None:
    await backends.status.stop()
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["success"] is True


async def test_healthz_is_503_for_good_once_the_status_mirrors_watch_died(backends: Backends) -> None:
    app = create_app(backends.settings(gateway_status_mirror=True))
    async for client in client_for(app):
        await wait_until(lambda: app.state.status_mirror.state is not None, within=20, what="the mirror live")
        assert (await client.get("/healthz")).status_code == 200
        with structlog.testing.capture_logs() as logs:
            # grpc.aio ends the watch's read with a CancelledError nobody asked for once its channel
            # is closed under it: the loop retries errors, not that, so its task dies.
            await app.state.backends.channel("status").close()
            await wait_until(lambda: app.state.tasks.failures, within=20, what="the watch's death")
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "UNAVAILABLE"
        assert response.json()["error"]["details"] == {"died": ["status-mirror-watch"]}
        assert [(line["log_level"], line["task"]) for line in logs if line["event"] == "background task died"] == [
            ("error", "status-mirror-watch")
        ]


async def test_readyz_stays_200_while_a_backend_is_down(client: httpx.AsyncClient, backends: Backends) -> None:
    await backends.notify.stop()
    await backends.status.set_serving(False)
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"ready": True}


async def test_readyz_is_503_once_the_gateway_stops(backends: Backends) -> None:
    app = create_app(backends.settings())
    async for client in client_for(app):
        assert (await client.get("/readyz")).status_code == 200
        await app.state.backends.close()
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "UNAVAILABLE"


async def test_readyz_backends_is_200_when_every_backend_serves(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz/backends")
    assert response.status_code == 200, response.text
    backends = response.json()["data"]["backends"]
    assert set(backends) == set(BACKEND_NAMES) >= {"status", "media", "notify", "ami_ingest"}
    assert all(b["serving"] for b in backends.values())


async def test_readyz_backends_is_503_naming_a_backend_that_is_down(
    client: httpx.AsyncClient, backends: Backends
) -> None:
    await backends.media.stop()
    response = await client.get("/readyz/backends")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "UNAVAILABLE"
    assert error["details"]["notServing"] == ["media"]
    assert "media" in error["message"]
    assert error["details"]["backends"]["media"]["status"].startswith("UNAVAILABLE")


async def test_readyz_backends_is_503_when_a_backend_reports_not_serving(
    client: httpx.AsyncClient, backends: Backends
) -> None:
    await backends.notify.set_serving(False)
    await backends.ami_ingest.set_serving(False)
    response = await client.get("/readyz/backends")
    assert response.status_code == 503
    details = response.json()["error"]["details"]
    assert details["notServing"] == ["notify", "ami_ingest"]
    assert details["backends"]["notify"]["status"] == "NOT_SERVING"
    await backends.notify.set_serving(True)
    await backends.ami_ingest.set_serving(True)
    assert (await client.get("/readyz/backends")).status_code == 200


async def test_readyz_backends_is_503_when_nothing_listens_at_an_address(backends: Backends) -> None:
    settings = backends.settings(ami_ingest_addr=f"127.0.0.1:{free_port()}")
    async for client in client_for(create_app(settings)):
        response = await client.get("/readyz/backends")
        assert response.status_code == 503
        assert response.json()["error"]["details"]["notServing"] == ["ami_ingest"]


async def test_metrics_count_http_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/queue-status/operators/PJSIP/1002")
    await client.get("/api/queue-status/operators", params={"status": "nonsense"})
    text = (await client.get("/metrics")).text
    assert (
        'switchboard_gateway_http_requests_total{method="GET",'
        'route="/api/queue-status/operators/{memberId:path}",status="200"}'
    ) in text
    assert 'route="/api/queue-status/operators",status="400"}' in text
    assert "switchboard_gateway_http_request_duration_seconds_bucket" in text
    assert "PJSIP/1002" not in text


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/healthz",
        "/readyz",
        "/readyz/backends",
        "/api/queue-status/operators",
        "/api/queue-status/operators/{memberId}",
        "/api/queue-status/snapshot",
        "/api/queue-status/stream",
        "/api/queue-status/sync/resync",
        "/api/queue-status/clear",
    ):
        assert path in spec["paths"], path
    status_param = next(
        p for p in spec["paths"]["/api/queue-status/operators"]["get"]["parameters"] if p["name"] == "status"
    )
    assert "StatusName" in str(status_param["schema"])
    assert "in_use" in spec["components"]["schemas"]["StatusName"]["enum"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_unknown_path_gets_the_json_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_root_redirects_to_the_dashboard_keeping_the_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/", params={"wall": "1"})
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard?wall=1"
    page = await client.get("/dashboard", params={"wall": "1"})
    assert page.status_code == 200
    assert '<body class="wall">' in page.text
    assert (await client.get("/static/dashboard.js")).status_code == 200
