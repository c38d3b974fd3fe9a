"""Run every benchmark module and collect the results: ``python -m bench.run [module ...]``.

A benchmark module is ``bench/<area>.py`` (not this file, not one whose name starts with ``_``)
exposing ``run() -> list[dict]``; each dict holds ``name``, ``value``, ``unit``, ``target``
(text such as ``">= 50000"``) and ``met`` (bool). The results of all modules go to
``bench/results.json`` and a table on stdout.

A missed target is a finding, not a failure: the exit status is 0. A module that crashes (or
returns malformed results) prints its error, contributes nothing, does not stop the others,
and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results.json"
NOT_MODULES = {"__init__", "run"}
FIELDS = ("name", "value", "unit", "target", "met")


@dataclass(frozen=True)
class Result:
    name: str
    value: float
    unit: str
    target: str
    met: bool


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


def format_table(results: Sequence[Result]) -> str:
    rows = [("name", "value", "unit", "target", "met")]
    rows += [(r.name, _format_value(r.value), r.unit, r.target, "yes" if r.met else "NO") for r in results]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i == 1 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, directory: Path = BENCH_DIR, package: str = "bench") -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("modules", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="where to write the JSON results")
    args = parser.parse_args(argv)

    available = discover(directory)
    unknown = sorted(set(args.modules) - set(available))
    if unknown:
        parser.error(f"no such benchmark module: {', '.join(unknown)} (have: {', '.join(available) or 'none'})")
    modules = args.modules or available

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

    args.output.write_text(json.dumps([asdict(r) for r in collected], indent=2) + "\n")
    print()
    print(format_table(collected) if collected else "(no benchmark results)")
    missed = sum(not r.met for r in collected)
    print(f"\n{len(collected)} result(s), {missed} target(s) missed, written to {args.output}")
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
