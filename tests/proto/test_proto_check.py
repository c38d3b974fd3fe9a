"""The proto lint and breaking-change check (tools/proto_check.py) guards our public contracts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import proto_check
from tools.buf_breaking import buf_breaking

REPO = Path(__file__).resolve().parents[2]
STATUS_PROTO = Path("switchboard/status/v1/status.proto")


@pytest.fixture
def protos(tmp_path: Path) -> Path:
    copy = tmp_path / "protos"
    shutil.copytree(REPO / "protos", copy)
    return copy


def run_check(protos: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/proto_check.py"),
            "--protos",
            str(protos),
            "--lock",
            str(protos / "proto.lock.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def edit(protos: Path, pattern: str, replacement: str) -> None:
    path = protos / STATUS_PROTO
    text, count = re.subn(pattern, replacement, path.read_text(), count=1, flags=re.MULTILINE)
    assert count == 1, f"pattern {pattern!r} not found"
    path.write_text(text)


def test_committed_protos_pass_lint_and_match_the_lock() -> None:
    result = run_check(REPO / "protos")
    assert result.returncode == 0, result.stderr


def test_renumbered_field_fails_the_check(protos: Path) -> None:
    edit(protos, r"string member_name = 3;", "string member_name = 30;")
    result = run_check(protos)
    assert result.returncode == 1
    assert "switchboard.status.v1.Operator: field 3 (member_name) removed without reserving it" in result.stderr


def test_retyped_field_fails_the_check(protos: Path) -> None:
    edit(protos, r"int32 penalty = 10;", "string penalty = 10;")
    result = run_check(protos)
    assert result.returncode == 1
    assert "field 10 changed" in result.stderr


def test_removed_rpc_fails_the_check(protos: Path) -> None:
    edit(protos, r"^\s*rpc Clear\(ClearRequest\) returns \(ClearResponse\) \{\n[^}]*\}\n", "")
    result = run_check(protos)
    assert result.returncode == 1
    assert "switchboard.status.v1.StatusService.Clear was removed" in result.stderr


def test_rpc_streaming_change_fails_the_check(protos: Path) -> None:
    edit(protos, r"returns \(stream WatchSnapshotResponse\)", "returns (WatchSnapshotResponse)")
    result = run_check(protos)
    assert result.returncode == 1
    assert "WatchSnapshot changed" in result.stderr


def test_removed_field_with_reserved_number_is_not_breaking(protos: Path) -> None:
    edit(protos, r"^\s*int32 wrapup_time = 18;\n", "  reserved 18;\n")
    assert "BREAKING" not in run_check(protos).stderr
    assert proto_check.main(["--protos", str(protos), "--lock", str(protos / "proto.lock.json"), "--update-lock"]) == 0


def test_added_field_passes_once_recorded_in_the_lock(protos: Path) -> None:
    edit(protos, r"int64 last_pause_ms = 22;", "int64 last_pause_ms = 22;\n  string skill = 23;")
    unrecorded = run_check(protos)
    assert unrecorded.returncode == 1
    assert "make proto-lock" in unrecorded.stderr
    assert proto_check.main(["--protos", str(protos), "--lock", str(protos / "proto.lock.json"), "--update-lock"]) == 0
    assert run_check(protos).returncode == 0


def test_update_lock_refuses_breaking_changes(protos: Path) -> None:
    before = (protos / "proto.lock.json").read_text()
    edit(protos, r"string member_name = 3;", "string member_name = 30;")
    assert proto_check.main(["--protos", str(protos), "--lock", str(protos / "proto.lock.json"), "--update-lock"]) == 1
    assert (protos / "proto.lock.json").read_text() == before


def test_lint_rejects_unprefixed_enum_values(protos: Path) -> None:
    edit(protos, r"MEMBER_STATUS_IDLE = 1;", "IDLE = 1;")
    result = run_check(protos)
    assert result.returncode == 1
    assert "enum value IDLE should be UPPER_SNAKE prefixed MEMBER_STATUS_" in result.stderr


def test_lint_rejects_package_that_does_not_match_its_directory(protos: Path) -> None:
    edit(protos, r"^package switchboard.status.v1;", "package switchboard.status.v2;")
    result = run_check(protos)
    assert result.returncode == 1
    assert "file must live in switchboard/status/v2/" in result.stderr


BUF = REPO / ".tools/buf/bin/buf"


def buf() -> Path:
    assert BUF.exists(), f"{BUF} is missing: `make setup` installs buf (npm @bufbuild/buf)"
    return BUF


def test_buf_finds_nothing_breaking_between_the_protos_and_the_commit_they_left_main_at() -> None:
    assert proto_check.main(["--buf", str(buf())]) == 0


def test_buf_passes_an_added_field(protos: Path) -> None:
    edit(protos, r"int64 last_pause_ms = 22;", "int64 last_pause_ms = 22;\n  string skill = 23;")
    assert buf_breaking(buf(), protos, REPO / "protos") == []


@pytest.mark.parametrize(
    ("pattern", "replacement", "says"),
    [
        (
            r"string member_name = 3;",
            "string member_name = 30;",
            'Previously present field "3" with name "member_name"',
        ),
        (r"int32 penalty = 10;", "string penalty = 10;", 'changed type from "int32" to "string"'),
        (r"string member_name = 3;", "string display_name = 3;", 'changed name from "member_name" to "display_name"'),
    ],
)
def test_buf_reports_a_breaking_change(protos: Path, pattern: str, replacement: str, says: str) -> None:
    edit(protos, pattern, replacement)
    problems = buf_breaking(buf(), protos, REPO / "protos")
    assert any(says in p for p in problems), problems


def test_the_check_fails_on_what_only_buf_sees(protos: Path) -> None:
    # Field presence: the same wire bytes, so the lock lets it through, but generated code changes.
    edit(protos, r"string member_name = 3;", "optional string member_name = 3;")
    lock = ["--protos", str(protos), "--lock", str(protos / "proto.lock.json")]
    assert proto_check.main([*lock, "--update-lock"]) == 0
    assert proto_check.main([*lock, "--buf", str(buf()), "--against", str(REPO / "protos")]) == 1
