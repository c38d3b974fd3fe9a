"""The JSON convention of docs/api-conventions.md as a check over a real response body.

Used by the tests that drive sample routes and SSE events of every API family (status, queues,
media, notifications), so a new key that breaks the convention fails a test.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
GRPC_CODE = re.compile(r"^[A-Z][A-Z_]*$")
EPOCH_MS_AFTER_2001 = 10**12
TIME_WORDS = {"at", "time", "timestamp", "since", "when", "date"}
"""Names that say "a time" without saying instant (``…At``) or duration (``…Ms``)."""
CONTRACT_TIMES = (".attempts[].at",)
"""Time keys a contract for outside users names, excused from TIME_WORDS but still epoch ms: a
notification attempt's ``at`` (docs/api-conventions.md, "Time"). Matched on the key's path with
list indices dropped."""
INDEX = re.compile(r"\[\d+\]")
OPAQUE = {"result", "progress", "detail", "jobSchemas", "variables"}
"""Values that are the caller's or a job's own JSON: their keys are not ours to name."""


def convention_breaks(body: Any) -> list[str]:
    """Every way ``body`` (a parsed response) breaks the convention; [] when it follows it."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return [f"body is {type(body).__name__}, not the envelope object"]
    extra = set(body) - {"success", "data", "meta", "error"}
    if extra or not isinstance(body.get("success"), bool):
        problems.append(f"envelope keys {sorted(body)}: only success, data, meta?, error?")
    if body.get("success") is False:
        error = body.get("error") or {}
        if set(error) != {"code", "message", "details"}:
            problems.append(f"error keys {sorted(error)}: code, message, details")
        if not GRPC_CODE.fullmatch(str(error.get("code", ""))):
            problems.append(f"error code {error.get('code')!r} is not a gRPC code name")
    _walk(body, "$", problems)
    return problems


def _walk(value: Any, path: str, problems: list[str]) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", problems)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        where = f"{path}.{key}"
        if not CAMEL.fullmatch(key):
            problems.append(f"{where}: not camelCase")
        lowered = key.lower()
        contract_time = INDEX.sub("[]", where).endswith(CONTRACT_TIMES)
        if not contract_time and (lowered in TIME_WORDS or key.endswith("Time") or key.endswith("Since")):
            problems.append(f"{where}: a time must be named …At (epoch ms) or …Ms (duration)")
        instant = key.endswith("At") or contract_time
        if instant and not (item is None or (_is_int(item) and item > EPOCH_MS_AFTER_2001)):
            problems.append(f"{where}: {item!r} is not epoch milliseconds (int) or null")
        if key.endswith("Ms") and not (item is None or _is_int(item)):
            problems.append(f"{where}: {item!r} is not integer milliseconds or null")
        # A job's data is the caller's JSON (the envelope's own "data" is ours).
        if key in OPAQUE or (key == "data" and path != "$"):
            continue
        _walk(item, where, problems)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_against_openapi(spec: dict[str, Any], method: str, template: str, status: int, body: Any) -> None:
    """Raise jsonschema.ValidationError unless ``body`` fits what ``spec`` documents for it."""
    operation = spec["paths"][template][method.lower()]
    documented = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {"allOf": [documented], "components": spec["components"]})


def check_sse_event(spec: dict[str, Any], path: str, event: str, data: Any) -> None:
    """Raise jsonschema.ValidationError unless an SSE event's data fits what ``spec`` publishes
    for it (``x-sse-events``); KeyError when the event is not published at all; AssertionError
    when the data breaks the JSON convention (camelCase keys, ``…At`` epoch ms, ``…Ms``)."""
    responses = spec["paths"][path]["get"]["responses"]
    (published,) = [r["x-sse-events"] for status, r in responses.items() if status.startswith("2")]
    jsonschema.validate(data, {"allOf": [published[event]["schema"]], "components": spec["components"]})
    broken = convention_breaks({"success": True, "data": data})
    assert broken == [], f"{path} event {event}: {broken}"
