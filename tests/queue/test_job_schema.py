"""Each job's data JSON Schema: derived from its function's signature, checked at enqueue, and the
same when the queue is known only through its registry declaration (the queue admin's view)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import pytest

from runtime.errors import InvalidArgument
from runtime.queue.registry import QueueDeclaration
from runtime.queue.spec import QueueSpec
from services.workflow.queue import workflow_queue


@dataclasses.dataclass
class Size:
    width: int
    height: int


async def render(
    ctx: dict[str, Any],
    template: str,
    tags: list[str] | None = None,
    mode: Literal["fast", "best"] = "fast",
    size: Size | None = None,
    note=None,  # unannotated: any JSON value
) -> None:
    return None


async def anything(ctx: dict[str, Any], kind: str, **rest: Any) -> None:
    return None


def render_queue() -> QueueSpec:
    return QueueSpec("renders", [render, anything])


def rebuilt(spec: QueueSpec) -> QueueSpec:
    """The spec as the queue admin rebuilds it from the registry (no access to the functions)."""
    return QueueDeclaration.from_json(QueueDeclaration.of(spec).to_json()).to_spec()


def test_workflow_job_schema_types_each_keyword_from_its_annotation() -> None:
    schema = workflow_queue().data_schema("heavy_workflow_execution")
    assert schema["title"] == "heavy_workflow_execution"
    assert schema["type"] == "object"
    assert schema["properties"] == {
        "duration_ms": {"type": "integer", "default": 0},
        "fail_times": {"type": "integer", "default": 0},
        "fail_permanently": {"type": "boolean", "default": False},
    }
    assert schema["required"] == []
    assert schema["additionalProperties"] is False


def test_parameters_without_default_are_required_and_richer_types_map_to_json_schema() -> None:
    schema = render_queue().data_schema("render")
    props = schema["properties"]
    assert schema["required"] == ["template"]
    assert props["template"] == {"type": "string"}
    assert props["tags"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    assert props["mode"] == {"enum": ["fast", "best"], "type": "string", "default": "fast"}
    assert props["note"] == {"default": None}
    assert schema["$defs"]["Size"]["required"] == ["width", "height"]


def test_a_function_taking_any_keywords_allows_extra_keys() -> None:
    spec = render_queue()
    assert spec.data_schema("anything")["additionalProperties"] is True
    spec.check_data("anything", {"kind": "x", "whatever": [1, 2]})


@pytest.mark.parametrize("make", [workflow_queue, lambda: rebuilt(workflow_queue())], ids=["service", "admin"])
@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({"duration_ms": "abc"}, "data.duration_ms", "'abc' is not of type 'integer'"),
        ({"duration_ms": "5"}, "data.duration_ms", "'5' is not of type 'integer'"),
        ({"fail_permanently": 1}, "data.fail_permanently", "1 is not of type 'boolean'"),
        ({"duration": 5}, "data.duration", "is not a parameter of this job"),
    ],
)
def test_data_breaking_the_schema_is_refused_naming_the_key(
    make: Any, data: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make().check_data("heavy_workflow_execution", data)
    assert caught.value.field == field
    assert caught.value.problem == f"{problem} (job 'heavy_workflow_execution')"


def test_nested_values_are_checked_and_named_by_their_path() -> None:
    spec = rebuilt(render_queue())
    spec.check_data("render", {"template": "t", "size": {"width": 1, "height": 2}, "mode": "best"})
    with pytest.raises(InvalidArgument) as caught:
        spec.check_data("render", {"template": "t", "size": {"width": "wide", "height": 2}})
    assert caught.value.field == "data.size.width"
    with pytest.raises(InvalidArgument) as missing:
        spec.check_data("render", {"tags": ["a"]})
    assert missing.value.field == "data.template"


def test_the_declaration_publishes_the_schema_it_was_derived_with() -> None:
    spec = workflow_queue()
    declaration = QueueDeclaration.from_json(QueueDeclaration.of(spec).to_json())
    schemas = declaration.job_data_schemas()
    assert sorted(schemas) == sorted(spec.function_map)
    assert schemas["statistics_aggregation"] == spec.data_schema("statistics_aggregation")


def test_a_declaration_from_a_worker_predating_schemas_still_checks_names_and_required_keys() -> None:
    raw = json.loads(QueueDeclaration.of(render_queue()).to_json())
    del raw["schemas"]
    old = QueueDeclaration.from_json(json.dumps(raw))
    schema = old.job_data_schemas()["render"]
    assert schema["required"] == ["template"]
    assert schema["properties"]["template"] == {}  # types unknown: any value
    with pytest.raises(InvalidArgument) as caught:
        old.to_spec().check_data("render", {"template": 1, "colour": "red"})
    assert caught.value.field == "data.colour"
