"""The Kubernetes manifests stay consistent with the code they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.config import CommonSettings, parse_address

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "k8s" / "base"

# Read by processes outside CommonSettings (the gateway's own settings, the gRPC bind host).
EXTRA_VARIABLES = {"GRPC_BIND_HOST", "GATEWAY_HOST", "QUEUE_ADMIN_ADDR"}


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]:
        docs.extend(d for d in yaml.safe_load_all((BASE / name).read_text()) if d)
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == kind]


def config() -> dict[str, str]:
    (configmap,) = of_kind("ConfigMap")
    return configmap["data"]


def test_every_resource_file_is_listed_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_each_deployment_runs_an_existing_module(deployment: dict[str, Any]) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    python, flag, module = container["command"]
    assert (python, flag) == ("python", "-m")
    path = REPO / module.replace(".", "/")
    assert (path / "__main__.py").exists() or path.with_suffix(".py").exists(), module


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_each_deployment_outlives_the_shutdown_drain(deployment: dict[str, Any]) -> None:
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 5


def test_config_names_only_variables_the_code_reads() -> None:
    known = {name.upper() for name in CommonSettings.model_fields} | EXTRA_VARIABLES
    assert set(config()) <= known


@pytest.mark.parametrize(
    ("variable", "deployment"),
    [
        ("STATUS_ADDR", "status"),
        ("MEDIA_ADDR", "media"),
        ("NOTIFY_ADDR", "notify"),
        ("AMI_INGEST_ADDR", "ami-ingest"),
        ("QUEUE_ADMIN_ADDR", "queue-admin"),
    ],
)
def test_grpc_addresses_point_at_the_service_and_its_probed_port(variable: str, deployment: str) -> None:
    host, port = parse_address(config()[variable])
    assert host == deployment
    (service,) = [s for s in of_kind("Service") if s["metadata"]["name"] == deployment]
    assert service["spec"]["ports"][0]["port"] == port
    (dep,) = [d for d in of_kind("Deployment") if d["metadata"]["name"] == deployment]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["grpc"]["port"] == port
    assert {"name": "grpc", "containerPort": port} in container["ports"]
