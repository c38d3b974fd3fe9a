"""docs/integrating.md stays true: its Python and shell (``buf curl``) examples run against a real
queue admin, a real workflow worker and Redis, and its table of public RPCs equals the contracts'
audience options."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from switchboard.common.v1 import common_pb2

from devsupport.auth import BOOTSTRAP_TOKEN
from runtime.queue import QueueSpec
from tests.proto.test_audience import audience_of
from tests.queue_admin.harness import AdminServer, StartWorker
from tools.scope_table import contract_methods

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integrating.md"
EXAMPLES = re.findall(r"```python example\n(.*?)```", GUIDE.read_text(), flags=re.S)
SHELL_EXAMPLES = re.findall(r"```sh example\n(.*?)```", GUIDE.read_text(), flags=re.S)
BUF_BIN = Path(__file__).resolve().parents[2] / ".tools/buf/bin"


def run_example(code: str) -> str:
    """Run one example; what it prints (its own ``print`` only: the servers log in this process too)."""
    out = io.StringIO()

    def example_print(*args: object) -> None:
        print(*args, file=out)

    exec(compile(code, str(GUIDE), "exec"), {"__name__": "example", "print": example_print})
    return out.getvalue()


def test_the_guide_has_the_examples_this_test_runs() -> None:
    assert len(EXAMPLES) == 2
    assert len(SHELL_EXAMPLES) == 4
    assert all(example.startswith("buf curl ") for example in SHELL_EXAMPLES)


def shell_environment(address: str) -> dict[str, str]:
    """What a reader's shell has: buf on PATH (as `make setup` installs it), the address, a token."""
    assert (BUF_BIN / "buf").exists(), f"{BUF_BIN}/buf is missing: `make setup` installs buf (npm @bufbuild/buf)"
    path = f"{BUF_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "QUEUE_ADMIN_ADDR": address, "SWITCHBOARD_TOKEN": BOOTSTRAP_TOKEN}


def run_shell_example(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False)


async def next_json_document(stdout: asyncio.StreamReader) -> Any:
    """The next JSON document a streaming ``buf curl`` prints (one indented object per message)."""
    lines: list[str] = []
    while line := (await stdout.readline()).decode():
        lines.append(line)
        if line.rstrip() == "}":
            return json.loads("".join(lines))
    raise AssertionError(f"the stream ended before a message: {''.join(lines)!r}")


async def test_the_shell_examples_get_the_queue_follow_its_events_and_enqueue(
    admin_server: AdminServer, declared: QueueSpec, start_worker: StartWorker
) -> None:
    await start_worker()
    env = shell_environment(admin_server.address)
    get_queue, watch, enqueue, refused = SHELL_EXAMPLES

    queue = await asyncio.to_thread(run_shell_example, get_queue, env)
    assert queue.returncode == 0, queue.stderr
    info = json.loads(queue.stdout)
    assert info["name"] == "workflow"
    schema = json.loads(info["jobDataSchemasJson"]["statistics_aggregation"])
    assert schema["properties"]["duration_ms"]["type"] == "integer"

    follow = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        watch,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the reader's Ctrl-C ends all of it
    )
    assert follow.stdout is not None
    try:
        first = await asyncio.wait_for(next_json_document(follow.stdout), 30)
        assert (first["event"], first["subscribed"]) == ("subscribed", True)
        enqueued = await asyncio.to_thread(run_shell_example, enqueue, env)
        assert enqueued.returncode == 0, enqueued.stderr
        job_id = json.loads(enqueued.stdout)["jobId"]
        seen = []
        while "completed" not in seen:
            event = await asyncio.wait_for(next_json_document(follow.stdout), 30)
            if event.get("jobId") == job_id:
                seen.append(event["event"])
        assert seen[0] == "waiting"
        assert json.loads(event["detailJson"])["result"]["kind"] == "statistics_aggregation"
    finally:
        os.killpg(follow.pid, signal.SIGINT)
        await asyncio.wait_for(follow.wait(), 10)

    missing = await asyncio.to_thread(run_shell_example, refused, env)
    assert missing.returncode != 0
    assert "not_found" in missing.stderr
    assert "nope" in missing.stderr


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
