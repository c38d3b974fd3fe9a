"""Every overlay renders, is valid against the Kubernetes 1.30 and 1.37 schemas, and passes checkov."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from devsupport.procs import REPO_ROOT
from tests.k8s.render import K8S, OVERLAYS, rendered, write_rendered

CHECKOV = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")


def exceptions() -> list[dict[str, Any]]:
    return list(yaml.safe_load((K8S / "policy-exceptions.yaml").read_text()))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_every_object_is_valid_against_the_kubernetes_schema(overlay: str, version: str) -> None:
    for document in rendered(overlay):
        kubernetes_validate.validate(document, version, strict=True)


@pytest.fixture(scope="module")
def checkov_failures(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str, str]]:
    """(overlay, check id, resource) of every failed checkov check, one run over all overlays."""
    assert CHECKOV.exists(), "checkov lives in its own venv: run `make k8s-tools` (make setup does)"
    directory = tmp_path_factory.mktemp("rendered")
    write_rendered(directory)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "kubernetes", "--skip-download", "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode in (0, 1), result.stderr
    reports = json.loads(result.stdout or "[]")
    failures: set[tuple[str, str, str]] = set()
    for report in reports if isinstance(reports, list) else [reports]:
        if not isinstance(report, dict):
            continue
        for failed in report.get("results", {}).get("failed_checks", []):
            failures.add((Path(failed["file_path"]).stem, failed["check_id"], failed["resource"]))
    return failures


def excused(overlay: str, check: str) -> bool:
    return any(e["check"] == check and overlay in e["overlays"] for e in exceptions())


@pytest.mark.timeout(360)
def test_checkov_fails_nothing_but_the_written_down_exceptions(checkov_failures: set[tuple[str, str, str]]) -> None:
    unexcused = sorted(f for f in checkov_failures if not excused(f[0], f[1]))
    assert unexcused == []


@pytest.mark.timeout(360)
def test_every_exception_still_matches_a_check_and_says_why(checkov_failures: set[tuple[str, str, str]]) -> None:
    for exception in exceptions():
        assert len(exception["reason"]) > 40, exception
        for overlay in exception["overlays"]:
            assert (overlay, exception["check"]) in {(o, c) for o, c, _ in checkov_failures}, exception
