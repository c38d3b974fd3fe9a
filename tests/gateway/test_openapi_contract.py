"""The published OpenAPI document matches behaviour: real answers of every status route (successes
and errors) and every event of the status stream validate against the schema the document gives
for them; every /api operation publishes a data model and the error envelope instead of
FastAPI's 422. (The queue, media and notify routes are checked the same way beside their own
tests: tests/queue_admin/test_gateway_api.py, tests/media/test_media_openapi.py,
tests/notify/test_notify_openapi.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
from switchboard.status.v1 import status_pb2 as S

from devsupport.auth import AUTH_HEADERS
from tests.gateway.conventions import check_against_openapi, check_sse_event
from tests.gateway.fake_status import FakeStatusService, operator
from tests.gateway.harness import Backends, LiveGateway
from tests.gateway.sse import events

API = "/api/queue-status"
SAMPLE = [
    ("get", "/operators", "/operators", 200),
    ("get", "/operators/queue/{queue}", "/operators/queue/support", 200),
    ("get", "/operators/queue/{queue}", "/operators/queue/nope", 404),
    ("get", "/operators/{memberId}", "/operators/PJSIP/9999", 404),
    ("get", "/operators/{memberId}", "/operators/Local/1001@agents", 200),
    ("get", "/queues", "/queues", 200),
    ("get", "/queues/{name}", "/queues/sales", 200),
    ("get", "/queues/{name}", "/queues/nope", 404),
    ("get", "/channels", "/channels", 200),
    ("get", "/sync/status", "/sync/status", 200),
    ("get", "/snapshot", "/snapshot", 200),
    ("get", "/snapshot", "/snapshot?x=1", 400),
    ("get", "/operators", "/operators?status=sleeping", 400),
    ("post", "/sync/resync", "/sync/resync", 200),
    ("delete", "/clear", "/clear", 200),
]


@pytest.mark.parametrize(("method", "template", "path", "status"), SAMPLE, ids=[s[2] for s in SAMPLE])
async def test_a_real_answer_validates_against_the_published_schema(
    client: httpx.AsyncClient, method: str, template: str, path: str, status: int
) -> None:
    spec = (await client.get("/openapi.json")).json()
    response = await client.request(method, API + path)
    assert response.status_code == status, response.text
    check_against_openapi(spec, method, API + template, status, response.json())
    if status == 200:  # a real answer with its own rows: the schema is no `{}` that takes anything
        assert response.json()["data"], path


async def test_the_operational_answers_validate_against_the_published_schemas(
    client: httpx.AsyncClient, backends: Backends
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in ("/healthz", "/readyz", "/readyz/backends"):
        response = await client.get(path)
        assert response.status_code == 200, path
        check_against_openapi(spec, "get", path, 200, response.json())
    await backends.status.stop()
    response = await client.get("/readyz/backends")
    assert response.status_code == 503
    check_against_openapi(spec, "get", "/readyz/backends", 503, response.json())


async def test_every_json_answer_publishes_its_schema(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                assert schema != {}, f"{method} {path} {status}: an empty schema takes anything"


async def test_every_api_operation_publishes_a_data_model_or_its_events(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    untyped = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                content = response.get("content", {})
                if "text/event-stream" in content:
                    published = response["x-sse-events"]
                    assert all(event["schema"] for event in published.values()), f"{method} {path}"
                    continue
                if "application/json" not in content:
                    assert path.endswith("/variants/{name}"), f"{method} {path} answers {sorted(content)}"
                    continue
                schema = content["application/json"]["schema"]
                data = schema.get("allOf", [{}, {}])[1].get("properties", {}).get("data")
                if not data:
                    untyped.append(f"{method} {path} {status}")
    assert untyped == []


async def test_every_status_stream_event_validates_against_its_published_schema(
    live_gateway: LiveGateway, fake_status: FakeStatusService
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", f"{API}/stream") as response,
    ):
        spec = (await client.get("/openapi.json")).json()
        stream = events(response)
        first = await anext(stream)
        check_sse_event(spec, f"{API}/stream", first.event, first.json())
        fake_status.push(
            S.StateChange(operator_upserted=operator("sales", "PJSIP/1003", "Dan")),
            S.StateChange(operator_removed=S.OperatorKey(queue_name="sales", member_id="PJSIP/1002")),
            S.StateChange(queue_upserted=S.Queue(name="vip", strategy="leastrecent")),
            S.StateChange(queue_removed="support"),
            S.StateChange(channel_upserted=S.Channel(channel_name="PJSIP/1003-01", unique_id="1700000000.9")),
            S.StateChange(channel_removed="1700000000.9"),
        )
        change = await anext(stream)
    data: dict[str, Any] = change.json()
    assert [c["kind"] for c in data["changes"]] == [
        "operatorUpserted", "operatorRemoved", "queueUpserted", "queueRemoved", "channelUpserted", "channelRemoved"
    ]  # fmt: skip
    check_sse_event(spec, f"{API}/stream", change.event, data)
    data["changes"][0]["operator"]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        check_sse_event(spec, f"{API}/stream", change.event, data)


async def test_every_api_operation_documents_the_error_envelope_and_no_422(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, f"{method} {path}"
            for status in ("400", "401", "403", "503"):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, f"{method} {path} {status}"
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_the_envelopes_refuse_what_the_api_never_answers(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    error = {"allOf": [{"$ref": "#/components/schemas/ErrorEnvelope"}], "components": spec["components"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"detail": [{"loc": ["query", "x"], "msg": "bad"}]}, error)  # FastAPI's own 422
    success = {"allOf": [{"$ref": "#/components/schemas/SuccessEnvelope"}], "components": spec["components"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"success": True, "data": [], "count": 3}, success)  # count belongs in meta


async def test_the_status_streams_error_event_validates_against_its_published_schema(
    live_gateway: LiveGateway, backends: Backends
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_gateway.url, timeout=5, headers=AUTH_HEADERS) as client,
        client.stream("GET", f"{API}/stream") as response,
    ):
        spec = (await client.get("/openapi.json")).json()
        stream = events(response)
        assert (await anext(stream)).event == "snapshot"
        await backends.status.stop()
        last = await anext(stream)
    assert last.event == "error"
    check_sse_event(spec, f"{API}/stream", last.event, last.json())
