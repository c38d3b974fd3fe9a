"""The dev overlay is wired into a working suite: every address it gives a process (Redis, each
database, the OTLP endpoint, the AMI feed, each gRPC service) names a Service of the overlay on a
port it serves, and the pods that Service selects listen there.

There is no cluster on these machines to ``kubectl apply -k k8s/overlays/dev``; this is what the
rendered objects can show of it (the flows are opened by the NetworkPolicies, tests/k8s/test_stores.py
and test_manifests.py).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.ami_ingest.settings import AmiIngestSettings
from tests.k8s.render import of_kind
from tests.k8s.test_manifests import config

URL_VARIABLES = {
    "REDIS_URL": 6379,
    "DATABASE_URL": 5432,
    "AUTH_DATABASE_URL": 5432,
    "OTEL_EXPORTER_OTLP_ENDPOINT": 4317,
}
"""Variables holding a URL → the port its scheme means when the URL names none."""
DEFAULT_AMI_PORT: int = AmiIngestSettings.model_fields["ami_port"].default


def secret_values(overlay: str) -> list[tuple[str, str]]:
    """(variable, value) of every Secret entry of ``overlay``."""
    return [
        (key, base64.b64decode(value).decode())
        for secret in of_kind(overlay, "Secret")
        for key, value in (secret.get("data") or {}).items()
    ]


def addresses(overlay: str) -> list[tuple[str, str, int]]:
    """(variable, host, port) of every address the overlay's ConfigMap and Secrets give."""
    found = []
    settings = config(overlay)
    for variable, value in [*settings.items(), *secret_values(overlay)]:
        if variable in URL_VARIABLES:
            url = urlsplit(value)
            assert url.hostname, f"{variable}={value}"
            found.append((variable, url.hostname, url.port or URL_VARIABLES[variable]))
        elif variable.endswith("_ADDR"):
            host, _, port = value.rpartition(":")
            found.append((variable, host, int(port)))
        elif variable == "AMI_HOST":
            found.append((variable, value, int(settings.get("AMI_PORT", DEFAULT_AMI_PORT))))
    return found


def listening_pods(overlay: str, service: dict[str, Any], port: int) -> list[str]:
    """The Deployments whose pods ``service`` selects and whose container listens on its ``port``."""
    entry = next((p for p in service["spec"]["ports"] if p["port"] == port), None)
    if entry is None:
        return []
    target = entry.get("targetPort", port)
    selector = service["spec"]["selector"].items()
    listening = []
    for deployment in of_kind(overlay, "Deployment"):
        template = deployment["spec"]["template"]
        if not selector <= template["metadata"]["labels"].items():
            continue
        ports = [p for c in template["spec"]["containers"] for p in c.get("ports", [])]
        if any(target in (p["containerPort"], p.get("name")) for p in ports):
            listening.append(deployment["metadata"]["name"])
    return listening


def test_the_dev_overlay_gives_every_dependency_an_address() -> None:
    given = {variable for variable, _, _ in addresses("dev")}
    assert {"REDIS_URL", "DATABASE_URL", "AUTH_DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "AMI_HOST"} <= given


@pytest.mark.parametrize(("variable", "host", "port"), addresses("dev"))
def test_each_dev_address_reaches_pods_listening_behind_a_service_of_the_overlay(
    variable: str, host: str, port: int
) -> None:
    services = {s["metadata"]["name"]: s for s in of_kind("dev", "Service")}
    assert host in services, f"{variable}: no Service {host!r} in the dev overlay"
    assert listening_pods("dev", services[host], port), f"{variable}: nothing listens behind {host}:{port}"
