"""Mutation testing of the pure modules (``make mutation``): how many deliberately broken lines a test catches.

For each module, mutmut (configured in pyproject.toml ``[tool.mutmut]``) breaks one thing at a
time (a comparison flipped, a constant changed, a call dropped) and runs every test of the
configured selection that executes the broken function, in a fresh process forked per mutant,
with one worker. The score of a module is ``(killed + timeouts) / all mutants``.

A surviving mutant is either a missing test (write it) or equivalent: no test can tell it from
the original. Equivalent ones are listed in ``tests/mutation/equivalent.txt``, one a line:
``<mutant name>  <why no behaviour differs>``. Survivors not listed there are printed.

The last line printed is the JSON object ``{"<module path>": score, …}``.

    python -m tools.mutation                      every module, from scratch (slow: an hour or more)
    python -m tools.mutation runtime/retry.py     only these modules
    python -m tools.mutation --keep …             reuse mutants/ (only when just tests changed: mutmut
                                                  does not refresh its copies of unmutated modules)
    python -m tools.mutation --report             only print the scores of the last run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.txt"

# The pure modules, in the order they run (quick ones first).
MODULES = (
    "runtime/errors.py",
    "runtime/retry.py",
    "runtime/queue/keys.py",
    "runtime/queue/codec.py",
    "runtime/queue/spec.py",
    "services/ami_ingest/domain/normalize.py",
    "services/ami_ingest/ami/wire.py",
    "runtime/status_model/rules.py",
    "runtime/status_model/state.py",
    "services/status/domain/batch.py",
    "services/status/domain/state.py",
    "services/status/domain/validation.py",
    "services/status/domain/wire.py",
)

# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code).
KILLED = {1, 3}
TIMEOUT = {36, -24, 24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


@dataclass(frozen=True)
class ModuleResult:
    path: str
    outcomes: dict[str, int | None]
    """Mutant name → mutmut exit code (None: not run)."""

    @property
    def counts(self) -> Counter[str]:
        return Counter(_outcome(code) for code in self.outcomes.values())

    @property
    def score(self) -> float:
        counts = self.counts
        total = sum(counts.values())
        return round((counts["killed"] + counts["timeout"]) / total, 3) if total else 1.0

    def survivors(self) -> list[str]:
        return sorted(name for name, code in self.outcomes.items() if code in SURVIVED)


def _outcome(code: int | None) -> str:
    if code is None:
        return "not run"
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return "other"


def mutant_glob(path: str) -> str:
    """mutmut names a mutant ``<dotted module>.<function>__mutmut_<n>``."""
    return path.removesuffix(".py").replace("/", ".") + ".*"


def load_result(path: str) -> ModuleResult:
    meta = MUTANTS / f"{path}.meta"
    data = json.loads(meta.read_text()) if meta.exists() else {}
    return ModuleResult(path, dict(data.get("exit_code_by_key", {})))


def load_equivalent() -> dict[str, str]:
    """Mutant name → why it is equivalent."""
    listed: dict[str, str] = {}
    for line in EQUIVALENT.read_text().splitlines() if EQUIVALENT.exists() else []:
        if line.strip() and not line.startswith("#"):
            name, _, why = line.partition(" ")
            listed[name] = why.strip()
    return listed


def run_modules(paths: list[str]) -> None:
    """One mutmut run for all of them: the test statistics and the clean run are paid once.

    Mutants named explicitly (by their module's glob) are run again whatever mutmut recorded.
    """
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", "1", *map(mutant_glob, paths)]
    print(f"mutation: {' '.join(paths)}", flush=True)
    # Property tests draw a few fixed examples per mutant (the "mutation" profile, tests/conftest.py).
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutation"}
    log = ROOT / "mutation.log"
    with log.open("w") as output:
        finished = subprocess.run(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    if finished.returncode:
        # mutmut redraws its progress line with \r: show the last lines it printed.
        lines = [line for line in log.read_text().replace("\r", "\n").splitlines() if line.strip()]
        print("\n".join(lines[-20:]), file=sys.stderr)
        raise SystemExit(f"mutmut failed (exit {finished.returncode}); its output is in {log}")


def report(paths: list[str]) -> dict[str, float]:
    equivalent = load_equivalent()
    scores: dict[str, float] = {}
    for path in paths:
        result = load_result(path)
        counts = result.counts
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
        print(f"{path}: score {result.score:.3f} ({summary})")
        for name in result.survivors():
            if name not in equivalent:
                print(f"    survived, not listed as equivalent: {name}  (mutmut show {name})")
        scores[path] = result.score
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="module paths (default: all of MODULES)")
    parser.add_argument("--keep", action="store_true", help="reuse mutants/ from the last run")
    parser.add_argument("--report", action="store_true", help="print the last run's scores, run nothing")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"not a mutated module: {', '.join(unknown)} (see MODULES in {__file__})")
    paths = [path for path in MODULES if path in args.modules] if args.modules else list(MODULES)
    if not args.report:
        if not args.keep:
            shutil.rmtree(MUTANTS, ignore_errors=True)
        run_modules(paths)
    scores = report(paths)
    print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
