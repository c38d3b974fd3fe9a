"""The manifests switch authentication on everywhere, mTLS on in production, and probes still reach
the services; dev's shared media volume fits a single-node cluster."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.settings import GatewaySettings
from runtime.config import CommonSettings
from tests.k8s.render import K8S, of_kind
from tests.k8s.test_manifests import GRPC_SERVICES, container, named, suite_deployments
from tests.k8s.test_stores import projected_secrets

AUTH_SECRET = "switchboard-auth"
SESSION_SECRET = "gateway-session"
TLS_DIR = "/etc/switchboard/tls"
HEALTH_PORT = 8081
GRPC_CLIENTS_AND_SERVERS = [*GRPC_SERVICES, "gateway"]


def mounted_secrets(overlay: str, name: str) -> set[str]:
    """The Secrets the Deployment mounts as settings files, without kustomize's hash suffix."""
    generated = {s["metadata"]["name"] for s in of_kind(overlay, "Secret")}
    names = set()
    for secret in projected_secrets(named(overlay, "Deployment", name)):
        base, _, _ = secret.rpartition("-")
        names.add(base if secret in generated and base else secret)
    return names


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(deployment).get("env", [])}


@pytest.mark.parametrize("overlay", ["base", "dev", "production"])
def test_every_grpc_service_and_the_gateway_get_the_internal_credential_and_workers_do_not(overlay: str) -> None:
    for deployment in suite_deployments(overlay):
        name = deployment["metadata"]["name"]
        has_auth = AUTH_SECRET in mounted_secrets(overlay, name)
        assert has_auth == (name in GRPC_CLIENTS_AND_SERVERS), name
        assert (SESSION_SECRET in mounted_secrets(overlay, name)) == (name == "gateway"), name


def test_the_gateway_reads_its_secrets_where_the_settings_look() -> None:
    gateway = named("base", "Deployment", "gateway")
    mounts = {m["name"]: m["mountPath"] for m in container(gateway)["volumeMounts"]}
    (configmap,) = of_kind("base", "ConfigMap")
    assert mounts["secrets"] == configmap["data"]["SECRETS_DIR"]


def test_the_dev_overlay_generates_every_auth_secret_with_settings_the_code_reads() -> None:
    secrets = {s["metadata"]["name"].rpartition("-")[0]: s for s in of_kind("dev", "Secret")}
    known = {field.upper() for field in GatewaySettings.model_fields}
    auth = {key: base64.b64decode(value).decode() for key, value in secrets[AUTH_SECRET]["data"].items()}
    assert set(auth) == {"AUTH_INTERNAL_TOKEN", "AUTH_BOOTSTRAP_TOKEN"} <= known
    assert all(auth.values())
    assert set(secrets[SESSION_SECRET]["data"]) == {"AUTH_SESSION_SECRET"} <= known


@pytest.mark.parametrize("name", GRPC_CLIENTS_AND_SERVERS)
def test_production_speaks_mtls_with_the_processs_own_certificate(name: str) -> None:
    deployment = named("production", "Deployment", name)
    env = env_of(deployment)
    assert {env["GRPC_TLS_CERT"], env["GRPC_TLS_KEY"], env["GRPC_TLS_CA"]} == {
        f"{TLS_DIR}/tls.crt",
        f"{TLS_DIR}/tls.key",
        f"{TLS_DIR}/ca.crt",
    }
    assert {"GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CA", "GRPC_HEALTH_PORT"} <= {
        f.upper() for f in CommonSettings.model_fields
    }
    mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
    assert mounts["tls"]["mountPath"] == TLS_DIR
    assert mounts["tls"]["readOnly"] is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == f"{name}-tls"


@pytest.mark.parametrize(("name", "port"), GRPC_SERVICES.items())
def test_production_probes_ask_the_plaintext_health_port_and_clients_the_tls_port(name: str, port: int) -> None:
    deployment = named("production", "Deployment", name)
    probes = container(deployment)
    assert env_of(deployment)["GRPC_HEALTH_PORT"] == str(HEALTH_PORT)
    assert {"name": "health", "containerPort": HEALTH_PORT} in probes["ports"]
    assert {"name": "grpc", "containerPort": port} in probes["ports"]
    assert probes["startupProbe"]["grpc"] == {"port": HEALTH_PORT, "service": "liveness"}
    assert probes["livenessProbe"]["grpc"] == {"port": HEALTH_PORT, "service": "liveness"}
    assert probes["readinessProbe"]["grpc"] == {"port": HEALTH_PORT}
    service = named("production", "Service", name)
    assert [p["port"] for p in service["spec"]["ports"]] == [port]  # the health port is for the kubelet only


@pytest.mark.parametrize("overlay", ["base", "dev"])
def test_without_the_mtls_component_services_are_probed_on_their_own_port(overlay: str) -> None:
    for name, port in GRPC_SERVICES.items():
        deployment = named(overlay, "Deployment", name)
        assert "GRPC_TLS_CERT" not in env_of(deployment)
        assert container(deployment)["readinessProbe"]["grpc"] == {"port": port}


def test_the_mtls_component_lists_a_patch_for_every_process_that_speaks_grpc() -> None:
    component = K8S / "components" / "mtls"
    listed = (component / "kustomization.yaml").read_text()
    files = {p.name for p in component.glob("*.yaml")} - {"kustomization.yaml"}
    assert files == {f"{name}.yaml" for name in GRPC_CLIENTS_AND_SERVERS}
    assert all(f"path: {file}" in listed for file in files)


def test_media_data_is_shared_read_write_many_in_production_and_once_per_node_in_dev() -> None:
    assert named("production", "PersistentVolumeClaim", "media-data")["spec"]["accessModes"] == ["ReadWriteMany"]
    dev = named("dev", "PersistentVolumeClaim", "media-data")["spec"]
    assert dev["accessModes"] == ["ReadWriteOnce"]
