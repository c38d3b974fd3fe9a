"""The JSON Schema of each job's data, derived from its job function's signature, and its check.

A job function is ``async def job(ctx, a: int, b: str = "x", **rest)``: its data is the JSON
object of its keyword arguments. :func:`data_schema` turns the parameters after ``ctx`` into
one JSON Schema (draft 2020-12) object: each parameter a property typed from its annotation
(through pydantic, so ``int``, ``str | None``, ``list[str]``, ``Literal[...]``, dataclasses and
pydantic models all map the usual way; an unannotated or unmappable parameter accepts any JSON
value), parameters without a default ``required``, and ``additionalProperties`` false unless the
function takes ``**kwargs``.

The schema is the contract: the queue layer validates data against it at enqueue
(:func:`check_data`, the same check whether the function is local or known only through the
registry's declaration), and the queue admin publishes it per job name (``GetQueue``,
``/api/queues/{queue}``). Validation is JSON Schema's, so it does not coerce: ``"5"`` is not an
integer.
"""

from __future__ import annotations

import inspect
import reprlib
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import jsonschema
from jsonschema.protocols import Validator
from pydantic import TypeAdapter
from pydantic.errors import PydanticUserError

from runtime.errors import InvalidArgument

__all__ = ["DataValidator", "check_data", "data_schema", "validator"]

DataValidator: TypeAlias = Validator
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
MAX_PROBLEM_CHARS = 200
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40
_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def data_schema(name: str, function: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema of the data of job ``name`` run by ``function`` (``ctx`` first)."""
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError):  # an annotation that does not resolve: described as any value
        hints = {}
    params = list(signature.parameters.values())[1:]  # after ctx
    properties: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    required: list[str] = []
    for param in params:
        if param.kind not in _KEYWORD_KINDS:
            continue
        prop = _type_schema(hints.get(param.name, Any), definitions)
        if param.default is param.empty:
            required.append(param.name)
        elif _is_json(param.default):
            prop["default"] = param.default
        properties[param.name] = prop
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": name,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": any(p.kind is p.VAR_KEYWORD for p in params),
    }
    if definitions:
        schema["$defs"] = definitions
    return schema


def _type_schema(annotation: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    if annotation is Any:
        return {}
    try:
        schema = TypeAdapter(annotation).json_schema()
    except (PydanticUserError, TypeError, ValueError):  # a type JSON cannot carry: any value
        return {}
    definitions.update(schema.pop("$defs", {}))
    schema.pop("title", None)
    return schema


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def validator(schema: Mapping[str, Any]) -> DataValidator:
    """A compiled validator for ``schema`` (build once per job type, reuse)."""
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    built: DataValidator = validator_class(schema)
    return built


def check_data(name: str, check: DataValidator, data: Mapping[str, Any]) -> None:
    """Raise InvalidArgument naming ``data.<key>`` (or ``data``) when ``data`` breaks the schema."""
    error = jsonschema.exceptions.best_match(check.iter_errors(dict(data)))
    if error is None:
        return
    path = [str(p) for p in error.absolute_path]
    instance = error.instance
    problem = error.message if len(error.message) <= MAX_PROBLEM_CHARS else error.message[:MAX_PROBLEM_CHARS] + "…"
    if error.validator == "type":  # the value shortened: a refused value may be large
        expected = error.validator_value
        wanted = " or ".join(map(repr, expected)) if isinstance(expected, list) else repr(expected)
        problem = f"{_SHORT.repr(instance)} is not of type {wanted}"
    elif error.validator == "required" and isinstance(instance, Mapping):
        missing = [k for k in error.validator_value if k not in instance]
        path.append(missing[0])
        problem = "is required"
    elif error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = set(error.schema.get("properties", {}))
        unexpected = sorted(k for k in instance if k not in known)
        path.append(unexpected[0])
        problem = "is not a parameter of this job"
    field = ".".join(["data", *path])
    raise InvalidArgument(field, f"{problem} (job {name!r})")
