"""Run a Switchboard process the way an operator does (``python -m services.x``) and watch it.

:class:`ServiceProcess` starts the command with extra environment variables, waits until its
gRPC health reports SERVING (or an HTTP URL answers 200), stops it with a signal and keeps
its stdout/stderr in files so a test can assert on what it printed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devsupport.auth import AUTH_ENV
from devsupport.waiting import wait_until_blocking

REPO_ROOT = Path(__file__).resolve().parents[1]
GEN_DIR = REPO_ROOT / "gen"


class ProcessExited(RuntimeError):
    """The process ended while we were waiting for it to become ready."""


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with the repo and gen/ importable, the local credential
    (``AUTH_BOOTSTRAP_TOKEN``, :mod:`devsupport.auth`) and ``extra`` on top."""
    env = dict(os.environ)
    paths = [str(REPO_ROOT), str(GEN_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(AUTH_ENV)  # every Switchboard process started here accepts the test credential
    env.update(extra or {})
    return env


def health_status(address: str, service: str = "", timeout: float = 1.0) -> str:
    """The grpc.health.v1 status name of ``service`` at ``address``, or an error description."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            return f"error: {error.code().name}"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def reflected_services(address: str, timeout: float = 5.0) -> set[str]:
    """The service names a gRPC server lists through server reflection."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = stub.ServerReflectionInfo(iter([request]), timeout=timeout)
        return {s.name for r in responses for s in r.list_services_response.service}


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """HTTP status of GET ``url`` (any status, 4xx/5xx included), None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return None


def _read_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc/<pid>/stat, None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may contain spaces: parse after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    stat = _read_stat(pid)
    return stat is not None and stat[0] not in {"Z", "X"}


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` in the process tree (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        if stat is not None and stat[0] not in {"Z", "X"}:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


class ServiceProcess:
    """One child process with captured output.

    ``ServiceProcess([sys.executable, "-m", "services.status"], env={...})`` — or use the
    ``module(...)`` shortcut. Output goes to temp files (never a pipe that could fill up and
    block the child); read it with :attr:`stdout` / :attr:`stderr`.
    """

    def __init__(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, name: str = "") -> None:
        self.args = list(args)
        self.name = name or " ".join(self.args[-1:])
        self.env = child_env(env)
        self._dir = Path(tempfile.mkdtemp(prefix="sb-proc-"))
        self._stdout_path = self._dir / "stdout"
        self._stderr_path = self._dir / "stderr"
        self._process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @classmethod
    def module(cls, module: str, *args: str, env: Mapping[str, str] | None = None) -> ServiceProcess:
        return cls([sys.executable, "-m", module, *args], env=env, name=module)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._process.pid

    def start(self) -> ServiceProcess:
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self._process = subprocess.Popen(
                self.args,
                env=self.env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        return self

    def poll(self) -> int | None:
        if self._process is None:
            return None
        self.returncode = self._process.poll()
        return self.returncode

    @property
    def stdout(self) -> str:
        return self._stdout_path.read_text(errors="replace") if self._stdout_path.exists() else ""

    @property
    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace") if self._stderr_path.exists() else ""

    def output(self) -> str:
        """stdout and stderr, labelled, for assertion messages."""
        return f"--- {self.name} stdout ---\n{self.stdout}\n--- {self.name} stderr ---\n{self.stderr}"

    def _check_running(self, waiting_for: str) -> None:
        if self.poll() is not None:
            raise ProcessExited(
                f"{self.name} exited with {self.returncode} while waiting for {waiting_for}\n{self.output()}"
            )

    def wait_serving(self, address: str, service: str = "", timeout: float = 20.0) -> None:
        """Block until grpc.health.v1 at ``address`` reports SERVING for ``service``."""

        def serving() -> bool:
            self._check_running(f"SERVING on {address}")
            return health_status(address, service, timeout=0.5) == "SERVING"

        what = f"{self.name} SERVING on {address}"
        wait_until_blocking(serving, within=timeout, what=what, interval=0.1, detail=self.output)

    def wait_http(self, url: str, expect: int = 200, timeout: float = 20.0) -> None:
        """Block until GET ``url`` answers ``expect``."""

        def answers() -> bool:
            self._check_running(f"HTTP {expect} from {url}")
            return http_status(url, timeout=0.5) == expect

        what = f"HTTP {expect} from {url}"
        wait_until_blocking(answers, within=timeout, what=what, interval=0.1, detail=self.output)

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to end by itself and return its exit code."""
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        self.returncode = self._process.wait(timeout=timeout)
        return self.returncode

    def send_signal(self, sig: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig`` and wait up to ``timeout`` s; SIGKILL the process group if it hangs."""
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        self.send_signal(sig)
        try:
            self.returncode = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (the child started its own session)."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self.returncode = self._process.wait()

    def cleanup(self) -> None:
        """Make sure nothing is left running (output files stay readable)."""
        if self._process is not None and self._process.poll() is None:
            self.kill()

    def close(self) -> None:
        """Stop whatever still runs and delete the captured output."""
        self.cleanup()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()


SpawnService = Callable[..., ServiceProcess]
"""``spawn(module, *args, env={...})``: start ``python -m module`` as a :class:`ServiceProcess`."""
