"""``buf breaking``: the second opinion :mod:`tools.proto_check` asks for on every contract change.

Our own check compares protos/ with ``protos/proto.lock.json`` (numbers, types, RPC signatures).
buf's ``FILE`` rules (``protos/buf.yaml``) look wider: a field renamed (JSON and text formats
break), a ``json_name``, a oneof moved, an enum value's name, a type moved between files, a file's
package or options. Its baseline is the protos of the commit this branch left main at (``git
merge-base HEAD main``; ``HEAD`` where there is no main), read straight from git, so the check
needs no second artefact to keep in step with the lock.

buf itself comes from npm (``@bufbuild/buf``, pinned in tools/buf/package-lock.json); ``make
setup`` installs it into ``.tools/buf``.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

__all__ = ["baseline_ref", "buf_breaking", "check_against_git"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, check=False, timeout=60)


def baseline_ref() -> str | None:
    """The commit whose protos are the baseline: where HEAD left main, else HEAD; None without git."""
    base = _git("merge-base", "HEAD", "main")
    if base.returncode == 0:
        return base.stdout.decode().strip()
    head = _git("rev-parse", "HEAD")
    return head.stdout.decode().strip() if head.returncode == 0 else None


def buf_breaking(buf: Path, protos: Path, against: Path) -> list[str]:
    """Every breaking change buf finds in the module at ``protos`` against the one at ``against``."""
    result = subprocess.run(
        [str(buf), "breaking", str(protos), "--against", str(against), "--error-format", "text"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode == 0:
        return []
    found = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return found or [f"buf breaking exited {result.returncode}"]


def check_against_git(buf: Path, protos: Path, ref: str) -> list[str]:
    """:func:`buf_breaking` of ``protos`` against the protos/ directory at git commit ``ref``."""
    archive = _git("archive", "--format=tar", ref, "protos")
    if archive.returncode != 0:
        return [f"cannot read protos/ at {ref}: {archive.stderr.decode().strip()}"]
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        return buf_breaking(buf, protos, Path(tmp) / "protos")
