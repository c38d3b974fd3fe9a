"""Render the kustomize overlays with kubectl, as `kubectl apply -k` would."""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from devsupport.procs import REPO_ROOT
from scripts import dev_certs

K8S = REPO_ROOT / "k8s"
OVERLAYS = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "dev-mtls": K8S / "overlays" / "dev-mtls",
    "production": K8S / "overlays" / "production",
}
NEEDS_CERTIFICATES = {"dev-mtls"}
"""Overlays that read certificates `make dev-certs` writes (not committed)."""


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl is needed to render k8s/ (kubectl kustomize): install Debian's kubectl")
    return found


@functools.cache
def source(overlay: str) -> Path:
    """Where ``overlay`` renders from: the repository, or for an overlay that needs certificates a
    copy of k8s/ with freshly written ones (what `make dev-certs` writes, never the developer's)."""
    if overlay not in NEEDS_CERTIFICATES:
        return OVERLAYS[overlay]
    copy = Path(tempfile.mkdtemp(prefix="sb-k8s-")) / "k8s"
    atexit.register(shutil.rmtree, copy.parent, ignore_errors=True)
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("certs"))
    directory = copy / OVERLAYS[overlay].relative_to(K8S)
    dev_certs.write(directory / "certs")
    return directory


@functools.cache
def rendered_text(overlay: str) -> str:
    result = subprocess.run([kubectl(), "kustomize", str(source(overlay))], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return result.stdout


@functools.cache
def _parsed(overlay: str) -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(doc for doc in yaml.load_all(rendered_text(overlay), Loader=loader) if doc)


def rendered(overlay: str) -> list[dict[str, Any]]:
    """The overlay's objects (parsed once per test session; do not modify them)."""
    return list(_parsed(overlay))


def of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in rendered(overlay) if doc["kind"] == kind]


def write_rendered(directory: Path) -> dict[str, Path]:
    """Each overlay's output as ``<overlay>.yaml`` in ``directory``."""
    paths = {}
    for overlay in OVERLAYS:
        path = directory / f"{overlay}.yaml"
        path.write_text(rendered_text(overlay))
        paths[overlay] = path
    return paths
