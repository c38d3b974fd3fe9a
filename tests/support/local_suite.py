"""A `make run` suite (scripts.run_local) on free loopback ports, for the tests that start one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devsupport.ports import free_ports
from scripts.local_plan import SERVICE_ADDRS


@dataclass(frozen=True)
class LocalSuitePorts:
    gateway: int
    addresses: dict[str, str]
    """Each service's ``*_ADDR`` variable → its loopback address."""
    env: dict[str, str]
    """What scripts.run_local needs to run every process on these ports."""


def local_suite_ports(redis_url: str, data_dir: Path) -> LocalSuitePorts:
    gateway, ami, *service_ports, smtp, bot, push, sms, sinks = free_ports(2 + len(SERVICE_ADDRS) + 5)
    addresses = {name: f"127.0.0.1:{port}" for name, port in zip(SERVICE_ADDRS, service_ports, strict=True)}
    env = {
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "GATEWAY_PORT": str(gateway),
        "AMI_PORT": str(ami),
        "NOTIFY_SINK_SMTP_PORT": str(smtp),
        "NOTIFY_SINK_TELEGRAM_PORT": str(bot),
        "NOTIFY_SINK_PUSH_PORT": str(push),
        "NOTIFY_SINK_SMS_PORT": str(sms),
        "NOTIFY_SINKS_PORT": str(sinks),
        **addresses,
    }
    return LocalSuitePorts(gateway, addresses, env)
