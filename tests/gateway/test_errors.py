"""The one error rendering: gRPC code name + the runtime HTTP table + details naming the field."""

from __future__ import annotations

import json

import grpc
import grpc.aio
import pytest
from fastapi.exceptions import RequestValidationError

from gateway.errors import error_body, error_response, validation_details
from runtime.errors import HTTP_STATUS


def test_error_body_shape() -> None:
    assert error_body(grpc.StatusCode.NOT_FOUND, "no such queue", {"queue": "x"}) == {
        "success": False,
        "error": {"code": "NOT_FOUND", "message": "no such queue", "details": {"queue": "x"}},
    }
    assert error_body(grpc.StatusCode.INTERNAL, "boom")["error"]["details"] == {}


@pytest.mark.parametrize("code", list(HTTP_STATUS))
def test_http_status_comes_from_the_runtime_table(code: grpc.StatusCode) -> None:
    response = error_response(code, "m")
    assert response.status_code == HTTP_STATUS[code]
    assert json.loads(bytes(response.body))["error"]["code"] == code.name


def test_validation_error_names_the_query_field() -> None:
    error = RequestValidationError(
        [{"loc": ("query", "paused"), "msg": "Input should be a valid boolean", "type": "bool_parsing"}]
    )
    message, details = validation_details(error)
    assert message == "paused: Input should be a valid boolean"
    assert details["field"] == "paused"
    assert details["fieldViolations"] == [
        {"field": "paused", "location": "query", "description": "Input should be a valid boolean"}
    ]


def test_malformed_json_names_the_body_and_where_it_broke() -> None:
    error = RequestValidationError(
        [{"loc": ("body", 1), "msg": "JSON decode error", "type": "json_invalid", "ctx": {"error": "Expecting value"}}]
    )
    message, details = validation_details(error)
    assert message == "body: is not valid JSON: Expecting value at character 1"
    assert details["field"] == "body"


def test_validation_error_in_a_body_keeps_the_nested_path() -> None:
    error = RequestValidationError([{"loc": ("body", "items", 0, "name"), "msg": "Field required", "type": "missing"}])
    assert validation_details(error)[1]["field"] == "items.0.name"


async def test_rpc_error_handler_keeps_the_backend_code_and_message() -> None:
    from gateway.errors import _on_rpc_error

    error = grpc.aio.AioRpcError(
        grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(), details="Deadline Exceeded"
    )
    response = await _on_rpc_error(None, error)  # type: ignore[arg-type]
    assert response.status_code == 504
    assert json.loads(bytes(response.body))["error"] == {
        "code": "DEADLINE_EXCEEDED",
        "message": "Deadline Exceeded",
        "details": {},
    }
