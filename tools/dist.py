"""Build ``switchboard-protos``: the wheel other teams install to call our gRPC contracts.

The wheel holds the ``.proto`` files beside the Python code generated from them (messages,
gRPC stubs and their ``.pyi`` type stubs, marked ``py.typed``), under the same import paths
our services use: ``from switchboard.status.v1 import status_pb2, status_pb2_grpc``.

Its version comes from the proto lock (``protos/proto.lock.json``): ``1.<elements>.0``, where
``<elements>`` counts every message, enum, service, field number (reserved ones included), enum
value number (reserved included) and RPC the lock records. The breaking-change check allows
only additions, and a removed field or value must be reserved, so the count never falls and
every additive change gives a newer version. ``1`` is the major version of the ``v1`` packages.

Usage::

    python -m tools.dist [--out DIR]     # what `make dist` runs; prints the wheel's path

The wheel is built by hatchling through ``python -m build --no-isolation``: the locked
backend from our venv, so the build needs no network.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOS = REPO_ROOT / "protos"
GENERATED = REPO_ROOT / "gen" / "switchboard"
LOCK = PROTOS / "proto.lock.json"
DIST_NAME = "switchboard-protos"

_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "{version}"
description = "Switchboard's public gRPC contracts: .proto files and generated Python stubs"
requires-python = ">=3.11"
dependencies = ["grpcio>={grpc}", "protobuf>={protobuf}"]

[tool.hatch.build.targets.wheel]
packages = ["switchboard"]
"""


def version_from_lock(lock: dict[str, Any]) -> str:
    """``1.<elements>.0`` for a proto lock; see the module docstring for why it only grows."""
    elements = 0
    for message in lock["messages"].values():
        elements += 1 + len(message["fields"]) + len(message["reserved"])
    for enum in lock["enums"].values():
        elements += 1 + len(enum["values"]) + len(enum["reserved"])
    for service in lock["services"].values():
        elements += 1 + len(service["rpcs"])
    return f"1.{elements}.0"


_PROTOBUF_GENCODE = re.compile(
    r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),"
)
_GRPC_GENCODE = re.compile(r"^GRPC_GENERATED_VERSION = '([0-9.]+)'", re.MULTILINE)


def runtime_floors() -> tuple[str, str]:
    """(grpcio, protobuf) versions the generated code refuses to run below: it checks both."""
    messages = next(GENERATED.rglob("*_pb2.py")).read_text()
    stubs = next(GENERATED.rglob("*_pb2_grpc.py")).read_text()
    protobuf = _PROTOBUF_GENCODE.search(messages)
    grpc = _GRPC_GENCODE.search(stubs)
    if protobuf is None or grpc is None:
        raise SystemExit("tools.dist: cannot read the generated code's runtime versions")
    return grpc.group(1), ".".join(protobuf.groups())


def stage(target: Path, version: str) -> None:
    """Lay out the project hatchling builds: generated code, the .proto files, py.typed."""
    if not (GENERATED / "__init__.py").exists():
        raise SystemExit("tools.dist: gen/ is missing; run `make proto` first")
    package = target / "switchboard"
    shutil.copytree(GENERATED, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for proto in (PROTOS / "switchboard").rglob("*.proto"):
        destination = package / proto.relative_to(PROTOS / "switchboard")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(proto, destination)
    (package / "py.typed").write_text("")
    grpc, protobuf = runtime_floors()
    (target / "pyproject.toml").write_text(
        _PYPROJECT.format(name=DIST_NAME, version=version, grpc=grpc, protobuf=protobuf)
    )


def build(out: Path) -> Path:
    """Build the wheel into ``out``; return its path."""
    version = version_from_lock(json.loads(LOCK.read_text()))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="switchboard-protos-") as tmp:
        project = Path(tmp)
        stage(project, version)
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(project)],
            check=True,
            capture_output=True,
        )
    wheel = out / f"{DIST_NAME.replace('-', '_')}-{version}-py3-none-any.whl"
    if not wheel.exists():
        raise SystemExit(f"tools.dist: the build did not produce {wheel.name}")
    return wheel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist")
    print(build(parser.parse_args().out))


if __name__ == "__main__":
    main()
