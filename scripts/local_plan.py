"""What ``make run`` starts, and with which environment — decided from the environment alone.

Pure: no process is started and nothing is probed here (``scripts.run_local`` does that), so
the wiring is testable in milliseconds. The commands come from the ``Procfile`` at the repo
root; this module only picks which of them run and adds each one's environment:

- every process gets ``REDIS_URL``, ``DATABASE_URL``, ``DATA_DIR``, every service's ``*_ADDR``
  (the topology of ``runtime.config``, defaults included), ``GATEWAY_PORT``,
  ``AMI_HOST``/``AMI_PORT`` and whatever else the caller's environment holds (``LOG_LEVEL``,
  ``OTEL_*``, ``AMI_USERNAME`` ... pass through untouched);
- each process gets its own ``METRICS_PORT`` from ``<NAME>_METRICS_PORT`` (e.g.
  ``STATUS_METRICS_PORT``), else 0, which lets the OS pick a free one;
- the demo AMI feed (``ami_feed``) runs only when ``AMI_HOST`` is not set, and then
  ami_ingest is pointed at it on 127.0.0.1;
- the local notify providers (``notify_sinks``) run while some provider is not configured, and
  the notify processes are pointed at them: an SMTP sink for ``SMTP_HOST``, a Bot API server for
  ``TELEGRAM_API_URL``, a Twilio-style API for ``SMS_API_URL`` (its status callback at the
  gateway); Web Push needs only ``VAPID_PRIVATE_KEY``, which ``scripts.run_local`` generates into
  ``DATA_DIR`` when unset;
- ``RUN_PROCESSES=status,gateway`` runs only the named Procfile entries (for working on a part).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from honcho.environ import parse_procfile

from runtime.config import Topology, default_service_addresses

REPO_ROOT = Path(__file__).resolve().parents[1]
PROCFILE = REPO_ROOT / "Procfile"
LOOPBACK = "127.0.0.1"

SERVICE_ADDRS = default_service_addresses()
"""``STATUS_ADDR`` … → default address, for every gRPC service of the topology."""
DEFAULT_GATEWAY_PORT: int = Topology.model_fields["gateway_port"].default
DEFAULT_AMI_PORT = 5038
AMI_FEED = "ami_feed"
NOTIFY_SINKS = "notify_sinks"
SINK_PORTS = {
    "NOTIFY_SINK_SMTP_PORT": 2525,
    "NOTIFY_SINK_TELEGRAM_PORT": 8081,
    "NOTIFY_SINK_PUSH_PORT": 8082,
    "NOTIFY_SINK_SMS_PORT": 8083,
    "NOTIFY_SINKS_PORT": 8084,
}


NO_METRICS_SERVER = frozenset({"gateway", AMI_FEED, NOTIFY_SINKS})
"""Processes without a metrics server of their own (the gateway serves ``/metrics`` on its port;
the demo feed and the local providers are development stand-ins)."""


def metrics_port_names(procfile: Mapping[str, str]) -> list[str]:
    """``<NAME>_METRICS_PORT`` of every Procfile process that runs a metrics server."""
    return [f"{name.upper()}_METRICS_PORT" for name in procfile if name not in NO_METRICS_SERVER]


class PlanError(ValueError):
    """The environment asks for something that cannot run; the message names the variable."""


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    command: str
    env: dict[str, str]


@dataclass(frozen=True)
class Plan:
    common_env: dict[str, str]
    processes: list[ProcessSpec]
    gateway_url: str
    listen_ports: dict[str, int] = field(default_factory=dict)

    def banner(self) -> str:
        env = self.common_env
        lines = [
            "Switchboard is starting:",
            f"  gateway        {self.gateway_url}",
            f"  dashboard      {self.gateway_url}/dashboard",
            f"  queue admin    {self.gateway_url}/admin/queues",
            f"  API docs       {self.gateway_url}/docs",
            f"  readiness      {self.gateway_url}/readyz/backends",
        ]
        lines += [f"  {name.removesuffix('_ADDR').lower():<14} grpc://{env[name]}" for name in SERVICE_ADDRS]
        lines += [
            f"  redis          {env['REDIS_URL']}",
            f"  database       {env['DATABASE_URL']}",
            f"  AMI            {env['AMI_HOST']}:{env['AMI_PORT']}"
            + (" (demo feed)" if any(p.name == AMI_FEED for p in self.processes) else ""),
            f"  processes      {', '.join(p.name for p in self.processes)}",
        ]
        lines += [f"  metrics        {name:<24} {url}" for name, url in self.metrics_urls().items()]
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)

    def metrics_urls(self) -> dict[str, str]:
        """Process name -> its Prometheus ``/metrics`` URL, where it is known before the start (the
        gateway's own route; every process given a fixed ``METRICS_PORT``)."""
        urls: dict[str, str] = {}
        for process in self.processes:
            port = int(process.env.get("METRICS_PORT", "0"))
            if process.name == "gateway":
                urls[process.name] = f"{self.gateway_url}/metrics"
            elif process.name not in NO_METRICS_SERVER and port > 0:
                urls[process.name] = f"http://{LOOPBACK}:{port}/metrics"
        return urls


def load_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """Process name → shell command, in file order."""
    return dict(parse_procfile(path.read_text()).processes)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise PlanError(f"{name}: must be a TCP port 1-65535 (got {raw!r})")
    return int(raw)


def _address_port(env: Mapping[str, str], name: str) -> int:
    value = env.get(name, "").strip() or SERVICE_ADDRS[name]
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise PlanError(f"{name}: must be host:port (got {value!r})")
    return int(port)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'switchboard.db').resolve()}"


def build_plan(
    env: Mapping[str, str],
    *,
    redis_url: str,
    procfile: Mapping[str, str],
    repo_root: Path = REPO_ROOT,
    python_bin_dir: str | None = None,
    ami_feed_port: int = DEFAULT_AMI_PORT,
) -> Plan:
    """The processes to run and their environments.

    ``env`` is the caller's environment; ``redis_url`` the Redis already chosen (given or
    started); ``ami_feed_port`` where the demo feed listens when ``AMI_HOST`` is unset and
    ``AMI_PORT`` does not say.
    """
    data_dir = Path(env.get("DATA_DIR") or repo_root / ".data").resolve()
    gateway_port = _port(env, "GATEWAY_PORT", DEFAULT_GATEWAY_PORT)
    listen_ports = {"GATEWAY_PORT": gateway_port}
    listen_ports |= {name: _address_port(env, name) for name in SERVICE_ADDRS}

    common = dict(env)
    common |= {name: env.get(name, "").strip() or default for name, default in SERVICE_ADDRS.items()}
    common |= {
        "REDIS_URL": redis_url,
        "DATABASE_URL": env.get("DATABASE_URL") or sqlite_url(data_dir),
        "DATA_DIR": str(data_dir),
        "GATEWAY_PORT": str(gateway_port),
        "LOG_FORMAT": env.get("LOG_FORMAT") or "console",
        "PYTHONUNBUFFERED": "1",
    }
    # The repo and gen/ importable even without the venv's .pth file; the venv's python first.
    common["PYTHONPATH"] = os.pathsep.join(
        [str(repo_root), str(repo_root / "gen")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    if python_bin_dir:
        common["PATH"] = os.pathsep.join([python_bin_dir] + ([env["PATH"]] if env.get("PATH") else []))

    selected = dict(procfile)
    only = [name.strip() for name in env.get("RUN_PROCESSES", "").split(",") if name.strip()]
    if only:
        unknown = sorted(set(only) - set(selected))
        if unknown:
            raise PlanError(f"RUN_PROCESSES: no such Procfile entry: {', '.join(unknown)}")
        selected = {name: command for name, command in selected.items() if name in only}
    if env.get("AMI_HOST", "").strip():
        selected.pop(AMI_FEED, None)
        common["AMI_PORT"] = str(_port(env, "AMI_PORT", DEFAULT_AMI_PORT))
    else:
        feed_port = _port(env, "AMI_PORT", ami_feed_port)
        common |= {"AMI_HOST": LOOPBACK, "AMI_PORT": str(feed_port)}
        if AMI_FEED in selected:
            listen_ports["AMI_PORT"] = feed_port

    if _local_notify_providers(env, common, gateway_port):
        if NOTIFY_SINKS in selected:
            listen_ports |= {name: int(common[name]) for name in SINK_PORTS}
    else:
        selected.pop(NOTIFY_SINKS, None)

    duplicates = {port for port in listen_ports.values() if list(listen_ports.values()).count(port) > 1}
    if duplicates:
        clash = sorted(name for name, port in listen_ports.items() if port in duplicates)
        raise PlanError(f"{', '.join(clash)}: the same port is given twice")

    processes = [
        ProcessSpec(
            name=name,
            command=command,
            env=common | {"METRICS_PORT": str(_metrics_port(env, name))},
        )
        for name, command in selected.items()
    ]
    return Plan(
        common_env=common,
        processes=processes,
        gateway_url=f"http://{LOOPBACK}:{gateway_port}",
        listen_ports=listen_ports,
    )


def _local_notify_providers(env: Mapping[str, str], common: dict[str, str], gateway_port: int) -> bool:
    """Point every unconfigured notify provider at the local servers; False when none is needed."""
    ports = {name: str(_port(env, name, default)) for name, default in SINK_PORTS.items()}
    local: dict[str, str] = {}
    if not env.get("SMTP_HOST", "").strip():
        local |= {"SMTP_HOST": LOOPBACK, "SMTP_PORT": ports["NOTIFY_SINK_SMTP_PORT"], "SMTP_STARTTLS": "false"}
    if not env.get("TELEGRAM_BOT_TOKEN", "").strip():
        local |= {
            "TELEGRAM_BOT_TOKEN": "local-bot-token",
            "TELEGRAM_API_URL": f"http://{LOOPBACK}:{ports['NOTIFY_SINK_TELEGRAM_PORT']}",
        }
    if not env.get("SMS_API_URL", "").strip():
        local |= {
            "SMS_API_URL": f"http://{LOOPBACK}:{ports['NOTIFY_SINK_SMS_PORT']}",
            "SMS_ACCOUNT_SID": "AClocal",
            "SMS_AUTH_TOKEN": "local-sms-token",
            "SMS_FROM": "+15550000000",
            "SMS_STATUS_CALLBACK_URL": f"http://{LOOPBACK}:{gateway_port}/api/notifications/sms/status",
        }
    if not local:
        return False
    common |= ports | local | {"NOTIFY_SINKS_URL": f"http://{LOOPBACK}:{ports['NOTIFY_SINKS_PORT']}"}
    return True


def _metrics_port(env: Mapping[str, str], process: str) -> int:
    name = f"{process.upper()}_METRICS_PORT"
    raw = env.get(name, "").strip()
    if not raw:
        return 0
    if not raw.lstrip("-").isdigit() or not -1 <= int(raw) <= 65535:
        raise PlanError(f"{name}: must be a port, 0 for a free one or -1 for off (got {raw!r})")
    return int(raw)
