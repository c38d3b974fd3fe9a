"""The published OpenAPI document matches behaviour: real answers of sample routes (successes and
errors) validate against the schema the document gives for their status, and every /api
operation documents the error envelope instead of FastAPI's 422."""

from __future__ import annotations

import httpx
import jsonschema
import pytest

from tests.gateway.conventions import check_against_openapi

API = "/api/queue-status"
SAMPLE = [
    ("get", "/operators", "/operators", 200),
    ("get", "/operators/queue/{queue}", "/operators/queue/support", 200),
    ("get", "/operators/queue/{queue}", "/operators/queue/nope", 404),
    ("get", "/operators/{memberId}", "/operators/PJSIP/9999", 404),
    ("get", "/queues/{name}", "/queues/sales", 200),
    ("get", "/snapshot", "/snapshot", 200),
    ("get", "/snapshot", "/snapshot?x=1", 400),
    ("get", "/operators", "/operators?status=sleeping", 400),
    ("post", "/sync/resync", "/sync/resync", 200),
]


@pytest.mark.parametrize(("method", "template", "path", "status"), SAMPLE, ids=[s[2] for s in SAMPLE])
async def test_a_real_answer_validates_against_the_published_schema(
    client: httpx.AsyncClient, method: str, template: str, path: str, status: int
) -> None:
    spec = (await client.get("/openapi.json")).json()
    response = await client.request(method, API + path)
    assert response.status_code == status, response.text
    check_against_openapi(spec, method, API + template, status, response.json())


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


async def test_the_envelopes_refuse_what_the_api_never_answers(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    error = {"allOf": [{"$ref": "#/components/schemas/ErrorEnvelope"}], "components": spec["components"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"detail": [{"loc": ["query", "x"], "msg": "bad"}]}, error)  # FastAPI's own 422
    success = {"allOf": [{"$ref": "#/components/schemas/SuccessEnvelope"}], "components": spec["components"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"success": True, "data": [], "count": 3}, success)  # count belongs in meta
