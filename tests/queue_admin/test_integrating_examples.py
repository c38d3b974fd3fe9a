"""docs/integrating.md stays true: its Python examples run against a real queue admin, a real
workflow worker and Redis, and its table of public RPCs equals the contracts' audience options."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
from switchboard.common.v1 import common_pb2

from devsupport.auth import BOOTSTRAP_TOKEN
from runtime.queue import QueueSpec
from tests.proto.test_audience import audience_of
from tests.queue_admin.harness import AdminServer, StartWorker
from tools.scope_table import contract_methods

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integrating.md"
EXAMPLES = re.findall(r"```python example\n(.*?)```", GUIDE.read_text(), flags=re.S)


def run_example(code: str) -> str:
    """Run one example; what it prints (its own ``print`` only: the servers log in this process too)."""
    out = io.StringIO()

    def example_print(*args: object) -> None:
        print(*args, file=out)

    exec(compile(code, str(GUIDE), "exec"), {"__name__": "example", "print": example_print})
    return out.getvalue()


def test_the_guide_has_the_examples_this_test_runs() -> None:
    assert len(EXAMPLES) == 2


async def test_the_enqueue_and_watch_example_prints_the_schema_and_the_result(
    admin_server: AdminServer, declared: QueueSpec, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    await start_worker()
    monkeypatch.setenv("QUEUE_ADMIN_ADDR", admin_server.address)
    monkeypatch.setenv("SWITCHBOARD_TOKEN", BOOTSTRAP_TOKEN)
    printed = await asyncio.wait_for(asyncio.to_thread(run_example, EXAMPLES[0]), 30)
    assert printed.splitlines() == [
        "duration_ms is integer",
        "result: {'kind': 'statistics_aggregation', 'attempt': 1, 'workedMs': 50}",
    ]


async def test_the_error_details_example_prints_code_reason_and_field(
    admin_server: AdminServer, declared: QueueSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEUE_ADMIN_ADDR", admin_server.address)
    monkeypatch.setenv("SWITCHBOARD_TOKEN", BOOTSTRAP_TOKEN)
    printed = (await asyncio.wait_for(asyncio.to_thread(run_example, EXAMPLES[1]), 30)).splitlines()
    assert printed[0].startswith("INVALID_ARGUMENT data_json.duration_ms: 'abc' is not of type 'integer'")
    assert printed[1].startswith("reason: InvalidArgument {")
    assert "'field': 'data_json.duration_ms'" in printed[1]
    assert printed[2] == "field: data_json.duration_ms - 'abc' is not of type 'integer' (job 'statistics_aggregation')"


def test_the_guides_table_of_public_rpcs_follows_the_audience_options() -> None:
    rows = re.findall(r"^\| `(\w+)` \(`([\w.]+)`\) \| ([^|]*) \| ([^|]*) \|$", GUIDE.read_text(), flags=re.M)
    documented = {}
    for service, package, public, others in rows:
        documented[f"{package}.{service}"] = (
            set(re.findall(r"[A-Z]\w+", public)),
            set(re.findall(r"[A-Z]\w+", re.sub(r"\((internal|admin)\)", "", others))),
        )
    actual: dict[str, tuple[set[str], set[str]]] = {}
    for method in contract_methods():
        service, name = method.strip("/").split("/")
        public = audience_of(method) == common_pb2.AUDIENCE_PUBLIC
        actual.setdefault(service, (set(), set()))[0 if public else 1].add(name)
    assert documented == actual
