"""bench/run.py: discovery, the results file, and which outcomes fail the run."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.run import MalformedResult, discover, main, validate


def quiet_load() -> tuple[float, float, float]:
    return (0.1, 0.2, 0.3)


def busy_load() -> tuple[float, float, float]:
    return (1.7, 1.2, 0.9)


GOOD = """
def run():
    return [
        {"name": "parse_rate", "value": 120000.0, "unit": "events/s", "target": ">= 50000", "met": True},
        {"name": "p99_latency", "value": 12.5, "unit": "ms", "target": "<= 10", "met": False},
    ]
"""
CRASHING = """
def run():
    raise RuntimeError("redis went away")
"""


@pytest.fixture
def bench_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    package = tmp_path / "benchpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "run.py").write_text("raise AssertionError('the runner must not run itself')\n")
    (package / "_helpers.py").write_text("raise AssertionError('helpers are not benchmarks')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [m for m in sys.modules if m == "benchpkg" or m.startswith("benchpkg.")]:
        del sys.modules[name]


def _write(package: Path, name: str, source: str) -> None:
    (package / f"{name}.py").write_text(textwrap.dedent(source))


def test_discovery_skips_the_runner_private_helpers_and_init(bench_package: Path) -> None:
    _write(bench_package, "status", GOOD)
    _write(bench_package, "ami", GOOD)
    assert discover(bench_package) == ["ami", "status"]


def test_results_file_holds_every_row_and_a_missed_target_still_exits_0(
    bench_package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(bench_package, "status", GOOD)
    output = tmp_path / "results.json"
    assert main(["--output", str(output)], directory=bench_package, package="benchpkg", load_average=quiet_load) == 0
    assert json.loads(output.read_text()) == [
        {"name": "parse_rate", "value": 120000.0, "unit": "events/s", "target": ">= 50000", "met": True},
        {"name": "p99_latency", "value": 12.5, "unit": "ms", "target": "<= 10", "met": False},
    ]
    table = capsys.readouterr().out
    assert "parse_rate" in table
    assert "120,000" in table
    assert "1 target(s) missed" in table


def test_a_crashing_module_records_nothing_hides_no_other_and_fails_the_run(
    bench_package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(bench_package, "broken", CRASHING)
    _write(bench_package, "status", GOOD)
    output = tmp_path / "results.json"
    assert main(["--output", str(output)], directory=bench_package, package="benchpkg", load_average=quiet_load) == 1
    assert [row["name"] for row in json.loads(output.read_text())] == ["parse_rate", "p99_latency"]
    err = capsys.readouterr().err
    assert "benchpkg.broken crashed" in err
    assert "redis went away" in err


def test_only_the_named_modules_run(bench_package: Path, tmp_path: Path) -> None:
    _write(bench_package, "broken", CRASHING)
    _write(bench_package, "status", GOOD)
    output = tmp_path / "results.json"
    argv = ["status", "--output", str(output)]
    assert main(argv, directory=bench_package, package="benchpkg", load_average=quiet_load) == 0


def test_an_unknown_module_name_is_a_usage_error(bench_package: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["nope"], directory=bench_package, package="benchpkg", load_average=quiet_load)
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"name": "x"}, "must return a list"),
        (["x"], "not a dict"),
        ([{"name": "x", "value": 1, "unit": "s", "target": "< 2"}], "lacks met"),
        ([{"name": "x", "value": "fast", "unit": "s", "target": "< 2", "met": True}], "finite number"),
        ([{"name": "x", "value": float("nan"), "unit": "s", "target": "< 2", "met": True}], "finite number"),
        ([{"name": "x", "value": 1, "unit": "s", "target": "< 2", "met": "yes"}], "must be a bool"),
    ],
)
def test_malformed_results_are_rejected_with_the_problem_named(raw: object, problem: str) -> None:
    with pytest.raises(MalformedResult, match=problem):
        validate("m", raw)


def test_a_busy_machine_marks_every_targeted_row_noisy_instead_of_judging_it(
    bench_package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(
        bench_package,
        "status",
        GOOD.replace(
            "]\n", '    {"name": "anchor", "value": 1.0, "unit": "ms", "target": "info", "met": True},\n    ]\n'
        ),
    )
    output = tmp_path / "results.json"
    assert main(["--output", str(output)], directory=bench_package, package="benchpkg", load_average=busy_load) == 0
    rows = {row["name"]: row for row in json.loads(output.read_text())}
    assert rows["parse_rate"]["noisy"] is rows["p99_latency"]["noisy"] is True
    assert "noisy" not in rows["anchor"], "an information row has nothing to judge"
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0] == "load average at start: 1.70 1.20 0.90 (1, 5, 15 min), above 0.5: rows are marked noisy"
    )
    [p99_line] = [line for line in out.splitlines() if line.startswith("p99_latency")]
    assert p99_line.split()[-1] == "noisy"
    assert "targets not judged (load average 1.70 > 0.5 at start)" in out
    assert "missed" not in out


def test_a_quiet_machine_judges_and_says_so(
    bench_package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(bench_package, "status", GOOD)
    output = tmp_path / "results.json"
    assert main(["--output", str(output)], directory=bench_package, package="benchpkg", load_average=quiet_load) == 0
    out = capsys.readouterr().out
    first_line = "load average at start: 0.10 0.20 0.30 (1, 5, 15 min), quiet enough to judge"
    assert out.splitlines()[0] == first_line
    [p99_line] = [line for line in out.splitlines() if line.startswith("p99_latency")]
    assert p99_line.split()[-1] == "NO"
