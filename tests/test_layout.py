"""Import rules of the tree: what may depend on what."""

from __future__ import annotations

import ast
from pathlib import Path

from devsupport.procs import REPO_ROOT

NEVER_IMPORT_TESTS = ("runtime", "services", "gateway", "devsupport", "scripts", "bench")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_nothing_outside_tests_imports_the_tests() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "tests")
        for top in NEVER_IMPORT_TESTS
        for path in (REPO_ROOT / top).rglob("*.py")
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_no_test_imports_a_conftest() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(m for m in imported_modules(path) if m.endswith("conftest"))
        for path in (REPO_ROOT / "tests").rglob("*.py")
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_a_browser_test_asks_for_the_browser_after_every_server() -> None:
    """pytest tears fixtures down in the reverse of the order a test lists them: with the browser
    last, its pages close before the servers they poll stop. A request accepted as a server's
    event loop ends is never handed to a transport, and its socket is left open."""
    offenders = [
        f"{path.relative_to(REPO_ROOT)}::{node.name}"
        for path in (REPO_ROOT / "tests").rglob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and "browser" in (names := [arg.arg for arg in node.args.args])
        and names[-1] != "browser"
    ]
    assert offenders == []
