"""``make run``: the whole Switchboard suite on one machine, on embedded defaults.

1. Redis: ``REDIS_URL`` if set; else the one on 127.0.0.1:6379 if it answers; else a
   ``redis-server`` started here (data in ``$DATA_DIR/redis``), stopped again at the end. That
   one runs with the append-only file and ``appendfsync always``: an enqueue is acknowledged
   only after Redis wrote it to disk, so a crash (even ``kill -9``) loses no accepted job. The
   cost, one fsync per Redis event-loop round (writes arriving together share it), is nothing
   at a development machine's load; ``everysec`` would ack jobs up to ~1 s before they are safe.
2. Database: ``DATABASE_URL`` if set, else SQLite at ``$DATA_DIR/switchboard.db``.
3. Migrations: ``alembic upgrade head`` with the repo's alembic.ini, when there is one.
4. Every process of the ``Procfile`` under honcho: logs prefixed by process name; one process
   exiting or Ctrl-C (SIGINT/SIGTERM) stops them all (SIGTERM, SIGKILL after 5 s).

Every port can be moved with an environment variable (see ``scripts.local_plan``), so tests
run a second copy next to a developer's. Exit status: 0 after Ctrl-C, else the status of the
process that stopped first (or 1/2 when startup itself failed).
"""

from __future__ import annotations

import importlib.util
import io
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Printer

from devsupport.ports import free_port, free_ports, is_listening
from devsupport.procs import health_status
from devsupport.redis_server import RedisServer, redis_answers
from runtime.auth.migrate import run_migrations as run_auth_migrations
from runtime.config import normalize_database_url
from scripts.local_plan import (
    AMI_FEED,
    DEFAULT_AMI_PORT,
    REPO_ROOT,
    SERVICE_ADDRS,
    Plan,
    PlanError,
    build_plan,
    load_procfile,
    metrics_port_names,
)
from services.notify.vapid import ensure_key_file

DEFAULT_REDIS_PORT = 6379
ALEMBIC_INIS = (REPO_ROOT / "alembic.ini", REPO_ROOT / "services" / "status" / "alembic.ini")
READY_TIMEOUT_SECONDS = 60.0
BOOTSTRAP_TOKEN_FILE = "bootstrap-token"
STOPPED_BY_SIGNAL = {130, 143}


class StartupError(RuntimeError):
    """The suite cannot start; the message says what to change."""


def say(message: str) -> None:
    # One write per line, newline included: print() writes the text and its end separately, and
    # a process's output printed by honcho's thread in between would glue onto the line.
    for line in message.splitlines():
        sys.stdout.write(f"make-run | {line}\n")
        sys.stdout.flush()


def preferred_or_free_port(preferred: int) -> int:
    return free_port() if is_listening(preferred) else preferred


LOCAL_APPENDFSYNC = "always"
"""``make run``'s own Redis: acknowledged means on disk (see the module docstring)."""


def choose_redis(
    env: Mapping[str, str], data_dir: Path, default_port: int = DEFAULT_REDIS_PORT
) -> tuple[str, RedisServer | None]:
    """The Redis URL to use, and the server started for it (None when one was already there)."""
    if env.get("REDIS_URL"):
        return env["REDIS_URL"], None
    default_url = f"redis://127.0.0.1:{default_port}/0"
    if redis_answers(default_url):
        say(f"using the Redis already running at {default_url}")
        return default_url, None
    server = RedisServer(
        preferred_or_free_port(default_port), data_dir=data_dir / "redis", appendfsync=LOCAL_APPENDFSYNC
    )
    server.start()
    say(f"started redis-server ({server.binary}) at {server.url}, data in {server.data_dir}")
    return server.url, server


def find_alembic_ini() -> Path | None:
    return next((path for path in ALEMBIC_INIS if path.is_file()), None)


def run_migrations(env: Mapping[str, str]) -> None:
    ini = find_alembic_ini()
    if ini is None:
        looked = ", ".join(str(path.relative_to(REPO_ROOT)) for path in ALEMBIC_INIS)
        say(f"no alembic.ini yet (looked for {looked}): no migrations to apply")
        return
    say(f"applying migrations: alembic -c {ini.relative_to(REPO_ROOT)} upgrade head")
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
        env=dict(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    for line in (result.stdout + result.stderr).splitlines():
        sys.stdout.write(f"migrate  | {line}\n")
        sys.stdout.flush()
    if result.returncode != 0:
        raise StartupError(f"migrations failed (alembic exit {result.returncode})")


def python_module(command: str) -> str | None:
    """``services.status`` for ``python -m services.status ...``; None for anything else."""
    words = shlex.split(command)
    if words[:1] == ["exec"]:
        words = words[1:]
    if len(words) >= 3 and Path(words[0]).name.startswith("python") and words[1] == "-m":
        return words[2]
    return None


def runnable_module(module: str) -> bool:
    """True when ``python -m module`` has something to run (a module, or a package with __main__)."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(f"{module}.__main__")
    except ImportError:
        return False
    return spec is not None


def missing_modules(plan: Plan) -> list[str]:
    """Procfile entries whose Python module does not exist (yet) in this checkout."""
    missing = []
    for process in plan.processes:
        module = python_module(process.command)
        if module is None:
            continue
        if not runnable_module(module):
            missing.append(f"{process.name} ({module})")
    return missing


def check_ports_free(plan: Plan) -> None:
    taken = [f"{name}={port}" for name, port in plan.listen_ports.items() if is_listening(port)]
    if taken:
        raise StartupError(
            f"already in use on 127.0.0.1: {', '.join(taken)} — stop what runs there or set those variables"
        )


def bootstrap_token(data_dir: Path) -> str:
    """The local admin token: ``DATA_DIR/bootstrap-token``, made (0600) on the first run."""
    path = data_dir / BOOTSTRAP_TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    say(f"generated AUTH_BOOTSTRAP_TOKEN into {path}")
    return token


def login_hint(plan: Plan) -> str:
    """Where to log in, and with what (the generated token is shown: it is local and admin)."""
    data_dir = Path(plan.common_env["DATA_DIR"])
    token_file = data_dir / BOOTSTRAP_TOKEN_FILE
    token = plan.common_env.get("AUTH_BOOTSTRAP_TOKEN", "")
    if token_file.is_file() and token_file.read_text().strip() == token:
        return f"log in at {plan.gateway_url}/dashboard with the bootstrap token (in {token_file}): {token}"
    return f"log in at {plan.gateway_url}/dashboard with your AUTH_BOOTSTRAP_TOKEN or an API key"


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def watch_readiness(plan: Plan, stop: threading.Event) -> None:
    """Print the URLs again once the gateway's /readyz/backends says every backend is SERVING.

    The gRPC health of the backends is polled first (quietly), so the gateway's access log
    is not flooded with /readyz calls while the services start.
    """
    addresses = [plan.common_env[name] for name in SERVICE_ADDRS]
    started = time.monotonic()
    while not stop.wait(0.5):
        if all(health_status(address, timeout=0.5) == "SERVING" for address in addresses) and http_ok(
            f"{plan.gateway_url}/readyz/backends"
        ):
            say(f"READY in {time.monotonic() - started:.1f}s: every backend reports SERVING")
            say(plan.banner().replace("is starting", "is running"))
            say(login_hint(plan))
            return
        if time.monotonic() - started > READY_TIMEOUT_SECONDS:
            where = f"{plan.gateway_url}/readyz/backends"
            say(f"not ready after {READY_TIMEOUT_SECONDS:.0f}s: see {where} and the logs above")
            return


class SuiteManager(Manager):
    """honcho's Manager, safe to stop while processes are still starting.

    honcho signals each unfinished process by its pid, and raises KeyError (exit status 1) for
    one whose start it has not heard of yet: Ctrl-C during start-up. Such a process is skipped
    here; it is killed with the rest KILL_WAIT seconds after it starts (honcho's own rule).
    """

    def _killall(self, force: bool = False) -> None:
        starting = {name: p for name, p in self._processes.items() if "pid" not in p and "returncode" not in p}
        for name in starting:
            del self._processes[name]
        try:
            super()._killall(force=force)
        finally:
            self._processes.update(starting)


def supervise(plan: Plan) -> int:
    printer = Printer(sys.stdout, colour=sys.stdout.isatty(), prefix=True)
    manager = SuiteManager(printer)
    for process in plan.processes:
        manager.add_process(process.name, process.command, env=process.env, cwd=str(REPO_ROOT))
    stop_watching = threading.Event()
    watcher = threading.Thread(target=watch_readiness, args=(plan, stop_watching), daemon=True)
    watcher.start()
    try:
        manager.loop()
    finally:
        stop_watching.set()
        watcher.join(timeout=2)
    code = manager.returncode if manager.returncode is not None else 1
    return 0 if code in STOPPED_BY_SIGNAL else code


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # logs appear as they happen, even in a pipe
    env = dict(os.environ)
    data_dir = Path(env.get("DATA_DIR") or REPO_ROOT / ".data").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not env.get("VAPID_PRIVATE_KEY", "").strip():
        # Web Push works out of the box: a key pair kept in DATA_DIR across runs.
        env["VAPID_PRIVATE_KEY"] = ensure_key_file(data_dir / "vapid-private.pem")
    if not env.get("AUTH_BOOTSTRAP_TOKEN", "").strip():
        env["AUTH_BOOTSTRAP_TOKEN"] = bootstrap_token(data_dir)
    if not env.get("AMI_HOST", "").strip():
        # The demo feed and ami_ingest share a login made for this run: there is no default one.
        env.setdefault("AMI_USERNAME", "demo")
        env.setdefault("AMI_SECRET", secrets.token_urlsafe(16))
    elif not (env.get("AMI_USERNAME", "").strip() and env.get("AMI_SECRET", "").strip()):
        say("cannot start: AMI_HOST is set, so AMI_USERNAME and AMI_SECRET must be too (no default AMI login)")
        return 2
    redis_server: RedisServer | None = None
    try:
        procfile = load_procfile()
        # A port fixed for every metrics server not given one, so the banner can list them all.
        unset = [name for name in metrics_port_names(procfile) if not env.get(name, "").strip()]
        env |= dict(zip(unset, map(str, free_ports(len(unset))), strict=True))
        feed_port = DEFAULT_AMI_PORT if env.get("AMI_PORT") else preferred_or_free_port(DEFAULT_AMI_PORT)
        # Validate the environment before starting anything.
        build_plan(env, redis_url="redis://unused", procfile=procfile, ami_feed_port=feed_port)
        redis_url, redis_server = choose_redis(env, data_dir)
        plan = build_plan(
            env,
            redis_url=redis_url,
            procfile=procfile,
            python_bin_dir=str(Path(sys.executable).parent),
            ami_feed_port=feed_port,
        )
        check_ports_free(plan)
        missing = missing_modules(plan)
        if missing:
            raise StartupError(f"Procfile names modules that do not exist yet: {', '.join(missing)}")
        run_migrations(plan.common_env)
        say("applying the auth tables' migrations (runtime/auth/alembic.ini)")
        auth_database = env.get("AUTH_DATABASE_URL", "").strip()
        run_auth_migrations(normalize_database_url(auth_database) if auth_database else plan.common_env["DATABASE_URL"])
        if AMI_FEED in {p.name for p in plan.processes}:
            say("AMI_HOST is not set: starting the demo AMI feed and pointing ami_ingest at it")
        say(plan.banner())
        return supervise(plan)
    except (PlanError, StartupError) as error:
        say(f"cannot start: {error}")
        return 2
    finally:
        if redis_server is not None:
            say(f"stopping redis-server at {redis_server.url}")
            redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
