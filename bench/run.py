"""Run every benchmark module and collect the results: ``python -m bench.run [module ...]``.

A benchmark module is ``bench/<area>.py`` (not this file, not one whose name starts with ``_``)
exposing ``run() -> list[dict]``; each dict holds ``name``, ``value``, ``unit``, ``target``
(text such as ``">= 50000"``) and ``met`` (bool). The results of all modules go to
``bench/results.json`` and a table on stdout.

A missed target is a finding, not a failure: the exit status is 0. A module that crashes (or
returns malformed results) prints its error, contributes nothing, does not stop the others,
and makes the exit status 1.

The machine's load average is printed at the start. Above :data:`QUIET_LOAD` (1-minute
average) the figures are not judged: every row with a target is marked ``noisy`` (in the table's
last column, and ``"noisy": true`` in the JSON), so a busy machine is not mistaken for a
regression. Such a run still shows the figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results.json"
NOT_MODULES = {"__init__", "run"}
FIELDS = ("name", "value", "unit", "target", "met")
QUIET_LOAD = 0.5
"""Highest 1-minute load average at the start of a run whose figures are judged against targets."""
INFORMATIONAL = ("info", "reference")
"""How the target of a row printed for information (nothing to judge) begins."""


@dataclass(frozen=True)
class Result:
    name: str
    value: float
    unit: str
    target: str
    met: bool
    noisy: bool = False
    """Measured on a busy machine: ``met`` is not a verdict."""

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        if not self.noisy:
            del row["noisy"]
        return row


def mark_noisy(results: Sequence[Result], load: float) -> list[Result]:
    """The rows as judged at ``load`` (1-minute average): above :data:`QUIET_LOAD`, every row
    with a target is marked noisy."""
    if load <= QUIET_LOAD:
        return list(results)
    return [r if r.target.startswith(INFORMATIONAL) else replace(r, noisy=True) for r in results]


def describe_load(load: tuple[float, float, float]) -> str:
    verdict = "quiet enough to judge" if load[0] <= QUIET_LOAD else f"above {QUIET_LOAD}: rows are marked noisy"
    return f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min), {verdict}"


class MalformedResult(ValueError):
    """A benchmark returned something that is not a list of result dicts."""


def discover(directory: Path = BENCH_DIR) -> list[str]:
    """Module names of the benchmarks in ``directory``, sorted."""
    return sorted(
        path.stem for path in directory.glob("*.py") if path.stem not in NOT_MODULES and not path.stem.startswith("_")
    )


def validate(module: str, raw: Any) -> list[Result]:
    """Check one module's return value and turn it into :class:`Result` rows."""
    if not isinstance(raw, list):
        raise MalformedResult(f"run() must return a list of dicts, got {type(raw).__name__}")
    results: list[Result] = []
    for index, row in enumerate(raw):
        where = f"result #{index}"
        if not isinstance(row, dict):
            raise MalformedResult(f"{where} is a {type(row).__name__}, not a dict")
        missing = [field for field in FIELDS if field not in row]
        if missing:
            raise MalformedResult(f"{where} lacks {', '.join(missing)}")
        value = row["value"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise MalformedResult(f"{where} ({row['name']}) value must be a finite number, got {value!r}")
        if not isinstance(row["met"], bool):
            raise MalformedResult(f"{where} ({row['name']}) met must be a bool, got {row['met']!r}")
        results.append(
            Result(
                name=str(row["name"]),
                value=float(value),
                unit=str(row["unit"]),
                target=str(row["target"]),
                met=row["met"],
            )
        )
    return results


def run_module(module: str, package: str = "bench") -> list[Result]:
    """Import ``package.module`` and call its ``run()``; raises whatever goes wrong."""
    imported = importlib.import_module(f"{package}.{module}")
    entry = getattr(imported, "run", None)
    if not callable(entry):
        raise MalformedResult("has no run() function")
    return validate(module, entry())


def _format_value(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _verdict(result: Result) -> str:
    if result.noisy:
        return "noisy"
    return "yes" if result.met else "NO"


def format_table(results: Sequence[Result]) -> str:
    rows = [("name", "value", "unit", "target", "met")]
    rows += [(r.name, _format_value(r.value), r.unit, r.target, _verdict(r)) for r in results]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i == 1 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def main(
    argv: Sequence[str] | None = None,
    *,
    directory: Path = BENCH_DIR,
    package: str = "bench",
    load_average: Callable[[], tuple[float, float, float]] = os.getloadavg,
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("modules", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="where to write the JSON results")
    args = parser.parse_args(argv)

    available = discover(directory)
    unknown = sorted(set(args.modules) - set(available))
    if unknown:
        parser.error(f"no such benchmark module: {', '.join(unknown)} (have: {', '.join(available) or 'none'})")
    modules = args.modules or available
    load = load_average()
    print(describe_load(load), flush=True)

    collected: list[Result] = []
    crashed: list[str] = []
    for module in modules:
        print(f"== {package}.{module}", flush=True)
        started = time.perf_counter()
        try:
            results = run_module(module, package)
        except Exception:
            crashed.append(module)
            print(f"!! {package}.{module} crashed; its results are not recorded:", file=sys.stderr)
            traceback.print_exc()
            continue
        collected.extend(results)
        print(f"   {len(results)} result(s) in {time.perf_counter() - started:.1f}s", flush=True)

    collected = mark_noisy(collected, load[0])
    args.output.write_text(json.dumps([r.as_json() for r in collected], indent=2) + "\n")
    print()
    print(format_table(collected) if collected else "(no benchmark results)")
    if load[0] > QUIET_LOAD:
        verdict = f"targets not judged (load average {load[0]:.2f} > {QUIET_LOAD} at start)"
    else:
        verdict = f"{sum(not r.met for r in collected)} target(s) missed"
    print(f"\n{len(collected)} result(s), {verdict}, written to {args.output}")
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
