"""`make dist`: the switchboard-protos wheel installs into a fresh venv and serves real calls."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tools import dist

pytestmark = pytest.mark.timeout(180)
WHEELHOUSE = dist.REPO_ROOT / ".tools" / "wheelhouse"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dist.build(tmp_path_factory.mktemp("dist"))


def lock() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(dist.LOCK.read_text())
    return loaded


def test_the_wheel_is_versioned_from_the_proto_lock(wheel: Path) -> None:
    assert wheel.name == f"switchboard_protos-{dist.version_from_lock(lock())}-py3-none-any.whl"


def test_an_added_field_gives_a_newer_version() -> None:
    grown = copy.deepcopy(lock())
    message = grown["messages"]["switchboard.common.v1.PageInfo"]
    message["fields"]["99"] = {"label": "singular", "name": "cursor", "oneof": "", "type": "string"}
    assert _minor(dist.version_from_lock(grown)) == _minor(dist.version_from_lock(lock())) + 1


def test_a_removed_field_that_is_reserved_keeps_the_version() -> None:
    changed = copy.deepcopy(lock())
    message = changed["messages"]["switchboard.common.v1.PageInfo"]
    message["fields"].pop("3")
    message["reserved"].append(3)
    assert dist.version_from_lock(changed) == dist.version_from_lock(lock())


def test_the_wheel_carries_protos_code_and_type_stubs(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for stem in ("status/v1/status", "queue/v1/queue", "media/v1/media", "notify/v1/notify"):
        assert {f"switchboard/{stem}.proto", f"switchboard/{stem}_pb2.py", f"switchboard/{stem}_pb2.pyi"} <= names
        assert f"switchboard/{stem}_pb2_grpc.pyi" in names
    assert "switchboard/py.typed" in names


def test_a_fresh_venv_installs_the_wheel_and_calls_a_server_with_its_stubs(wheel: Path, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv is not None, "uv is not on PATH: run `make setup`"
    assert (WHEELHOUSE / ".pins").exists(), f"{WHEELHOUSE} is missing: run `make setup`"
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "venv", "--quiet", "--python", os.path.realpath(sys.executable), str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    # The wheel's dependencies (grpcio, protobuf) come from the wheelhouse `make setup` fills: no network.
    offline = ["--offline", "--no-index", "--find-links", str(WHEELHOUSE)]
    subprocess.run(
        [uv, "pip", "install", "--quiet", *offline, "--python", str(python), str(wheel)],
        check=True,
        timeout=120,
    )
    client = textwrap.dedent(
        """
        from concurrent import futures
        import grpc
        from switchboard.common.v1 import common_pb2
        from switchboard.status.v1 import status_pb2, status_pb2_grpc

        class Status(status_pb2_grpc.StatusServiceServicer):
            def ListQueues(self, request, context):
                return status_pb2.ListQueuesResponse()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        status_pb2_grpc.add_StatusServiceServicer_to_server(Status(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = status_pb2_grpc.StatusServiceStub(channel).ListQueues(status_pb2.ListQueuesRequest(), timeout=10)
        server.stop(0)
        import switchboard.status.v1 as package, pathlib
        print(type(answer).__name__, common_pb2.PageInfo(page=2).page, pathlib.Path(package.__file__).parent)
        """
    )
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(python), "-c", client], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    name, page, location = result.stdout.split()
    assert (name, page) == ("ListQueuesResponse", "2")
    assert Path(location).is_relative_to(venv)


def _minor(version: str) -> int:
    return int(version.split(".")[1])
