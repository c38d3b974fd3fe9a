"""What the published response schemas are built from: one base model and the shared field types.

The gateway builds its JSON by hand (:mod:`gateway.status_json`, :mod:`gateway.queues_json` …)
for speed; the models in ``gateway.schemas_*`` describe that JSON for the OpenAPI document and
are never used to build it. ``extra="forbid"`` publishes ``additionalProperties: false`` and every
field is required, so ``tests/gateway/test_openapi_contract.py`` fails when a converter gains,
loses or retypes a key that its model does not.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = ["At", "DurationMs", "Opaque", "Ready", "Schema", "sse_schema"]

At = Annotated[int | None, Field(description="Epoch milliseconds; null: never or unknown.")]
"""An instant (docs/api-conventions.md): names end in ``At``."""
DurationMs = Annotated[int, Field(description="Milliseconds.")]
Opaque = Annotated[Any, Field(description="The caller's or a job's own JSON.")]


class Schema(BaseModel):
    """Base of every response model: exactly these keys, all present."""

    model_config = ConfigDict(extra="forbid")


class Ready(Schema):
    """An SSE stream's ``ready`` event: the subscription is live, nothing after it is missed."""

    live: Literal[True]


REF_TEMPLATE = "#/components/schemas/{model}"


def sse_schema(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schema of an SSE event's data and the component schemas it refers to."""
    schema = TypeAdapter(model).json_schema(ref_template=REF_TEMPLATE, mode="serialization")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return schema, defs
