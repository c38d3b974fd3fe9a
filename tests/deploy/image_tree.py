"""The runtime image's file tree, built without Docker, and its processes run as the image runs them.

:func:`build_image_tree` runs ``scripts/build_image_tree.sh``, the very script the Dockerfile's
build stage runs, into a fresh directory: the lock-synced production venv and ``/app`` (code and
``gen/``). :func:`image_process` starts a module from that tree the way a pod with the hardened
securityContext does: as UID/GID 65534 with no capabilities and ``no_new_privs``, in a private
mount namespace whose root filesystem is read-only except ``DATA_DIR`` and ``TMPDIR`` (the
volumes), with a clean environment and ``/`` as working directory, so nothing from the checkout
(its .venv, gen/, the repo on ``sys.path``) can stand in for the image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devsupport.procs import REPO_ROOT, ServiceProcess

NOBODY = 65534
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_image_tree.sh"
# Inside the private mount namespace, before dropping to 65534: only the two volumes stay writable.
_CONFINE = (
    'mount --bind "$DATA_DIR" "$DATA_DIR" && mount --bind "$TMPDIR" "$TMPDIR" '
    "&& mount -o remount,bind,ro / && cd / "
    f'&& exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --inh-caps=-all --no-new-privs -- "$@"'
)


def world_usable_python() -> str:
    """A Python 3.11 that UID 65534 can run (pyenv's lives under root's private home)."""
    for candidate in ("/usr/local/bin/python3.11", "/usr/bin/python3.11"):
        path = Path(candidate)
        if path.exists() and all(os.stat(p).st_mode & 0o001 for p in [*path.resolve().parents, path.resolve()]):
            return candidate
    raise RuntimeError("no Python 3.11 executable by other users: install Debian's python3.11")


@dataclass(frozen=True)
class ImageTree:
    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "venv"

    @property
    def app(self) -> Path:
        return self.root / "app"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        (site,) = (self.venv / "lib").glob("python3.*/site-packages")
        return site

    def volume(self, name: str) -> Path:
        """A fresh directory owned by 65534, like a mounted emptyDir."""
        path = self.root / "volumes" / name
        path.mkdir(parents=True)
        os.chown(path, NOBODY, NOBODY)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def build_image_tree() -> ImageTree:
    root = Path(tempfile.mkdtemp(prefix="sb-image-"))
    root.chmod(0o755)
    tree = ImageTree(root)
    env = {**os.environ, "UV_PYTHON": world_usable_python(), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    for phase in (["venv", str(tree.venv)], ["app", str(tree.venv), str(tree.app)]):
        subprocess.run(["sh", str(BUILD_SCRIPT), *phase], cwd=REPO_ROOT, env=env, check=True, timeout=300)
    return tree


def image_process(
    tree: ImageTree, *python_args: str, data_dir: Path, tmp_dir: Path, env: Mapping[str, str]
) -> ServiceProcess:
    """``python *python_args`` from ``tree`` as 65534 on a read-only root (not started yet)."""
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _CONFINE, "confine"]
    name = python_args[1] if python_args[:1] == ("-m",) else "python"
    process = ServiceProcess([*argv, str(tree.python), *python_args], name=name)
    # The image's environment (Dockerfile ENV) plus the deployment's, nothing inherited.
    process.env = {
        "PATH": f"{tree.venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "DATA_DIR": str(data_dir),
        "TMPDIR": str(tmp_dir),
        **env,
    }
    return process
