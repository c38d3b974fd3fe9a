"""A throwaway PostgreSQL cluster (initdb + pg_ctl) on a loopback port, for tests.

The cluster lives in a temp directory, listens on 127.0.0.1 only, trusts local connections
and runs with fsync off (a test database need not survive a power cut). PostgreSQL refuses to
run as root, so as root the server runs as the ``postgres`` system user with the directory
handed to it. Missing binaries fail loudly with how to install them — never a skip.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from devsupport.local_server import LocalServer
from devsupport.ports import LOOPBACK, free_port

INSTALL_HINT = "install it with `make setup` (apt-get install postgresql)"
SERVER_USER = "postgres"


class PostgresNotFound(RuntimeError):
    """No initdb / pg_ctl on this machine."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_postgres_bindir() -> Path:
    """Directory holding initdb and pg_ctl: $PG_BINDIR, the newest /usr/lib/postgresql/N/bin, the PATH."""
    override = os.environ.get("PG_BINDIR")
    candidates: list[Path] = [Path(override)] if override else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "createdb")):
            return bindir
    raise PostgresNotFound(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")


class PostgresServer(LocalServer):
    """One PostgreSQL postmaster on ``127.0.0.1:port`` with a trust-auth ``postgres`` superuser."""

    log_name = "postgres"

    def __init__(self, port: int | None = None, *, bindir: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.host = LOOPBACK
        self.bindir = bindir or find_postgres_bindir()
        self.user = "postgres"
        self._as_root = os.geteuid() == 0
        self.base_dir = Path(tempfile.mkdtemp(prefix="sb-postgres-"))
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "postgres.log"
        self._started = False
        if self._as_root:
            try:
                account = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresNotFound(f"running as root needs a '{SERVER_USER}' user; {INSTALL_HINT}") from None
            os.chown(self.base_dir, account.pw_uid, account.pw_gid)

    def _run(self, args: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.base_dir,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n{self.log_tail()}"
            )
        return result

    def start(self) -> None:
        """initdb (first time only), then start the server and wait until it accepts connections."""
        if self._started:
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
        options = " ".join(
            [
                f"-p {self.port}",
                f"-c listen_addresses={self.host}",
                f"-c unix_socket_directories={self.base_dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                *("-D", str(self.data_dir), "-l", str(self.log_path), "-o", options),
                *("-w", "-t", "30", "start"),
            ]
        )
        self._started = True

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy async URL."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"database name must be a plain identifier, got {name!r}")
        self._run([str(self.bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, name])
        return self.url(name)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """Plain libpq/asyncpg DSN (no SQLAlchemy driver suffix)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def close(self) -> None:
        """Stop the server and delete the cluster."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
