"""The manifests switch authentication on everywhere, mTLS on in production (and in dev-mtls, with
certificates `make dev-certs` writes), and probes still reach the services; dev's shared media
volume fits a single-node cluster."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from gateway.settings import GatewaySettings
from runtime.auth.tls import client_credentials, server_credentials
from runtime.config import CommonSettings
from tests.k8s.render import K8S, of_kind
from tests.k8s.test_manifests import GRPC_SERVICES, container, named, suite_deployments
from tests.k8s.test_stores import projected_secrets

AUTH_SECRET = "switchboard-auth"
SESSION_SECRET = "gateway-session"
TLS_DIR = "/etc/switchboard/tls"
HEALTH_PORT = 8081
GRPC_CLIENTS_AND_SERVERS = [*GRPC_SERVICES, "gateway"]


def unhashed(overlay: str, secret: str) -> str:
    """A Secret's name without the hash suffix kustomize gives the ones it generates."""
    generated = {s["metadata"]["name"] for s in of_kind(overlay, "Secret")}
    base, _, _ = secret.rpartition("-")
    return base if secret in generated and base else secret


def mounted_secrets(overlay: str, name: str) -> set[str]:
    """The Secrets the Deployment mounts as settings files, without kustomize's hash suffix."""
    return {unhashed(overlay, secret) for secret in projected_secrets(named(overlay, "Deployment", name))}


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(deployment).get("env", [])}


MTLS_OVERLAYS = ["production", "dev-mtls"]


@pytest.mark.parametrize("overlay", ["base", "dev", "dev-mtls", "production"])
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
    assert set(auth) == {"AUTH_INTERNAL_TOKEN", "AUTH_BOOTSTRAP_TOKEN", "AUTH_DATABASE_URL"} <= known
    assert all(auth.values())
    assert set(secrets[SESSION_SECRET]["data"]) == {"AUTH_SESSION_SECRET"} <= known


@pytest.mark.parametrize("overlay", MTLS_OVERLAYS)
@pytest.mark.parametrize("name", GRPC_CLIENTS_AND_SERVERS)
def test_mtls_overlays_speak_mtls_with_the_processs_own_certificate(overlay: str, name: str) -> None:
    deployment = named(overlay, "Deployment", name)
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
    assert unhashed(overlay, volumes["tls"]["secret"]["secretName"]) == f"{name}-tls"


@pytest.mark.parametrize("overlay", MTLS_OVERLAYS)
@pytest.mark.parametrize(("name", "port"), GRPC_SERVICES.items())
def test_mtls_probes_ask_the_plaintext_health_port_and_clients_the_tls_port(overlay: str, name: str, port: int) -> None:
    deployment = named(overlay, "Deployment", name)
    probes = container(deployment)
    assert env_of(deployment)["GRPC_HEALTH_PORT"] == str(HEALTH_PORT)
    assert {"name": "health", "containerPort": HEALTH_PORT} in probes["ports"]
    assert {"name": "grpc", "containerPort": port} in probes["ports"]
    assert probes["startupProbe"]["grpc"] == {"port": HEALTH_PORT, "service": "liveness"}
    assert probes["livenessProbe"]["grpc"] == {"port": HEALTH_PORT, "service": "liveness"}
    assert probes["readinessProbe"]["grpc"] == {"port": HEALTH_PORT}
    service = named(overlay, "Service", name)
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


def test_dev_mtls_is_the_dev_overlay_with_the_mtls_component() -> None:
    assert {d["metadata"]["name"] for d in of_kind("dev-mtls", "Deployment")} == {
        d["metadata"]["name"] for d in of_kind("dev", "Deployment")
    }
    tls = {unhashed("dev-mtls", s["metadata"]["name"]): s for s in of_kind("dev-mtls", "Secret")}
    for name in GRPC_CLIENTS_AND_SERVERS:
        assert tls[f"{name}-tls"]["type"] == "kubernetes.io/tls"
        assert set(tls[f"{name}-tls"]["data"]) == {"tls.crt", "tls.key", "ca.crt"}


def tls_settings(directory: Path, name: str) -> CommonSettings:
    """The settings a dev-mtls pod of ``name`` reads: its Secret's files, written to ``directory``."""
    secrets = of_kind("dev-mtls", "Secret")
    (secret,) = [s for s in secrets if unhashed("dev-mtls", s["metadata"]["name"]) == f"{name}-tls"]
    files = {}
    for key, value in secret["data"].items():
        files[key] = directory / f"{name}-{key}"
        files[key].write_bytes(base64.b64decode(value))
    return CommonSettings(grpc_tls_cert=files["tls.crt"], grpc_tls_key=files["tls.key"], grpc_tls_ca=files["ca.crt"])


async def health_over_mtls(port: int, client: CommonSettings, server_name: str) -> grpc.StatusCode | str:
    """The health of the server on ``port``, dialled as ``server_name`` with ``client``'s certificate."""
    credentials = client_credentials(client)
    assert credentials is not None
    options = [("grpc.ssl_target_name_override", server_name)]
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@pytest.mark.parametrize("name", GRPC_SERVICES)
async def test_dev_mtls_certificates_let_the_gateway_reach_each_service_by_its_service_names(
    tmp_path: Path, name: str
) -> None:
    server_settings, gateway = tls_settings(tmp_path, name), tls_settings(tmp_path, "gateway")
    credentials = server_credentials(server_settings)
    assert credentials is not None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        for dialled in (name, f"{name}.switchboard.svc", f"{name}.switchboard.svc.cluster.local"):
            assert await health_over_mtls(port, gateway, dialled) == "SERVING", dialled
        # The client checks the name: another service's name is not on this certificate.
        other = "gateway" if name != "gateway" else "status"
        assert await health_over_mtls(port, gateway, other) is grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)


@pytest.mark.parametrize("overlay", ["base", "dev", "dev-mtls", "production"])
def test_no_network_policy_opens_a_probe_only_port_to_other_pods(overlay: str) -> None:
    # The kubelet probes a pod from the pod's own node, and NetworkPolicy always allows a pod's
    # own node (Kubernetes documentation, Network Policies): the probes need no rule, so the
    # plaintext health port stays closed to every other pod. Every ingress rule names its ports.
    for policy in of_kind(overlay, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            assert ports, f"{policy['metadata']['name']}: an ingress rule without ports admits every port"
            assert HEALTH_PORT not in ports, policy["metadata"]["name"]
            assert "health" not in ports, policy["metadata"]["name"]
