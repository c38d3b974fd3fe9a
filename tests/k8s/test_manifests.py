"""The rendered manifests are hardened, scalable and consistent with the code they run."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from devsupport.procs import REPO_ROOT
from runtime.config import CommonSettings, parse_address
from runtime.queue.metrics import JOBS_BY_STATE
from services.media.queues import PROCESSING_QUEUE, SYNC_QUEUE, WATERMARK_QUEUE
from services.notify.queues import NOTIFICATIONS, TELEGRAM
from services.workflow.queue import QUEUE_NAME as WORKFLOW_QUEUE
from tests.k8s.render import OVERLAYS, of_kind, rendered

# Read by processes outside CommonSettings (the gateway's own settings, the queue admin's address).
EXTRA_VARIABLES = {"GATEWAY_HOST", "QUEUE_ADMIN_ADDR", "SECRETS_DIR"}
KEBAB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUITE = "switchboard"


def suite_deployments(overlay: str) -> list[dict[str, Any]]:
    return [
        d
        for d in of_kind(overlay, "Deployment")
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == SUITE
    ]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def named(overlay: str, kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind(overlay, kind) if d["metadata"]["name"] == name]
    return found


def config(overlay: str) -> dict[str, str]:
    (configmap,) = of_kind(overlay, "ConfigMap")
    return configmap["data"]


DEPLOYMENTS = [d["metadata"]["name"] for d in suite_deployments("base")]
GRPC_SERVICES = {"status": 50051, "media": 50052, "notify": 50053, "ami-ingest": 50054, "queue-admin": 50055}


def test_each_kustomization_lists_every_manifest_beside_it() -> None:
    for directory in OVERLAYS.values():
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        listed = {r for r in kustomization["resources"] if not r.startswith("..")}
        patches = {p["path"] for p in kustomization.get("patches", []) if "path" in p}
        documentation = {"prometheus-adapter-rules.yaml"}
        on_disk = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"} - documentation
        assert listed | patches == on_disk, directory


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_every_name_is_kebab_case(overlay: str) -> None:
    for document in rendered(overlay):
        assert KEBAB.match(document["metadata"]["name"]), document["metadata"]["name"]
    for deployment in suite_deployments(overlay):
        env = {e["name"]: e.get("value") for e in container(deployment).get("env", [])}
        assert env["OTEL_SERVICE_NAME"] == deployment["metadata"]["name"]


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_each_deployment_runs_an_existing_module(name: str) -> None:
    python, flag, module = container(named("base", "Deployment", name))["command"]
    assert (python, flag) == ("python", "-m")
    path = REPO_ROOT / module.replace(".", "/")
    assert (path / "__main__.py").exists() or path.with_suffix(".py").exists(), module


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_every_pod_is_hardened(overlay: str) -> None:
    for deployment in of_kind(overlay, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = container(deployment)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        resources = container(deployment)["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() & resources["limits"].keys()
        assert not container(deployment)["image"].endswith((":latest", "switchboard"))


DOWNWARD_API = {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "NODE_NAME": "spec.nodeName"}


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_every_span_names_its_pod_namespace_and_node_from_the_downward_api(overlay: str) -> None:
    for deployment in suite_deployments(overlay):
        env = {e["name"]: e for e in container(deployment)["env"]}
        for variable, field in DOWNWARD_API.items():
            assert env[variable]["valueFrom"] == {"fieldRef": {"fieldPath": field}}
        attributes = dict(pair.split("=") for pair in env["OTEL_RESOURCE_ATTRIBUTES"]["value"].split(","))
        assert attributes == {
            "k8s.pod.name": "$(POD_NAME)",
            "k8s.namespace.name": "$(POD_NAMESPACE)",
            "k8s.node.name": "$(NODE_NAME)",
            "service.instance.id": "$(POD_NAME)",
        }
        # $(VAR) expands only from variables defined earlier in the list.
        names = list(env)
        assert max(names.index(v) for v in DOWNWARD_API) < names.index("OTEL_RESOURCE_ATTRIBUTES")


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_replicas_spread_over_zones_and_nodes(overlay: str) -> None:
    for deployment in suite_deployments(overlay):
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in spread:
            assert constraint["maxSkew"] == 1
            assert constraint["labelSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": SUITE}}
            # Counted per Deployment and rollout: each process's own replicas spread, not the suite's.
            assert constraint["matchLabelKeys"] == ["app.kubernetes.io/name", "pod-template-hash"]


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_each_process_has_its_own_service_account_without_a_token(name: str) -> None:
    deployment = named("base", "Deployment", name)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name
    assert named("base", "ServiceAccount", name)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_each_process_writes_only_to_its_volumes(name: str) -> None:
    mounts = {m["mountPath"]: m for m in container(named("base", "Deployment", name))["volumeMounts"]}
    assert {"/var/lib/switchboard", "/tmp"} <= mounts.keys()
    assert config("base")["DATA_DIR"] == "/var/lib/switchboard"


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_each_process_has_startup_liveness_and_readiness_probes(name: str) -> None:
    probes = container(named("base", "Deployment", name))
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= probes.keys()
    if name in GRPC_SERVICES:
        # Liveness asks the "liveness" health service (the event loop), never the Redis-backed one.
        assert probes["livenessProbe"]["grpc"] == {"port": GRPC_SERVICES[name], "service": "liveness"}
        assert probes["readinessProbe"]["grpc"] == {"port": GRPC_SERVICES[name]}
    else:
        assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_each_process_has_a_disruption_budget_and_autoscaling_where_stateless(name: str) -> None:
    assert named("base", "PodDisruptionBudget", name)["spec"]["maxUnavailable"] == 1
    autoscalers = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind("base", "HorizontalPodAutoscaler")}
    deployment = named("base", "Deployment", name)
    if name == "ami-ingest":  # leader + standby: more replicas add nothing
        assert name not in autoscalers
        assert deployment["spec"]["replicas"] == 2
    else:
        assert name in autoscalers
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"


BACKLOG_QUEUES = {
    "workflow-worker": "workflow",
    "media-worker": "media-processing",
    "media-sync-worker": "media-sync",
    "media-watermark-worker": "media-watermark",
    "notify-worker": "notifications",
}
"""The queue each worker Deployment serves, whose backlog it also scales on in production."""


@pytest.mark.parametrize(("name", "queue"), BACKLOG_QUEUES.items())
def test_production_workers_also_scale_on_their_queue_backlog(name: str, queue: str) -> None:
    hpa = named("production", "HorizontalPodAutoscaler", name)
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert set(metrics) == {"Resource", "External"}
    external = metrics["External"]["external"]
    assert external["metric"]["name"] == "switchboard_queue_waiting_jobs"
    assert external["metric"]["selector"] == {"matchLabels": {"queue": queue}}
    assert int(external["target"]["averageValue"]) > 0


def test_the_backlog_queues_are_the_queues_those_workers_serve() -> None:
    served = {WORKFLOW_QUEUE, PROCESSING_QUEUE, SYNC_QUEUE, WATERMARK_QUEUE, NOTIFICATIONS}
    assert set(BACKLOG_QUEUES.values()) == served
    # The Telegram worker stays on CPU alone: the Bot API limits the bot, not the pod.
    telegram = named("production", "HorizontalPodAutoscaler", "notify-telegram-worker")
    assert [m["type"] for m in telegram["spec"]["metrics"]] == ["Resource"]
    assert TELEGRAM not in BACKLOG_QUEUES.values()


def test_the_adapter_rule_serves_the_workers_waiting_gauge_under_the_name_the_autoscalers_read() -> None:
    path = REPO_ROOT / "k8s" / "overlays" / "production" / "prometheus-adapter-rules.yaml"
    (rule,) = yaml.safe_load(path.read_text())["externalRules"]
    # The gauge every worker exports per queue (tests/queue/test_backlog_metric.py).
    (gauge,) = [metric.name for metric in JOBS_BY_STATE.describe()]
    assert rule["seriesQuery"] == gauge + '{state="waiting"}'
    # Every worker of a queue reports the same count: the max over pods, per queue.
    assert rule["metricsQuery"] == "max by (queue) (" + gauge + '{state="waiting",<<.LabelMatchers>>})'
    read = {m["external"]["metric"]["name"] for name in BACKLOG_QUEUES for m in external_metrics(name)}
    assert read == {rule["name"]["as"]}


def external_metrics(name: str) -> list[dict[str, Any]]:
    hpa = named("production", "HorizontalPodAutoscaler", name)
    return [m for m in hpa["spec"]["metrics"] if m["type"] == "External"]


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_config_is_generated_so_a_change_rolls_the_pods(overlay: str) -> None:
    (configmap,) = of_kind(overlay, "ConfigMap")
    assert re.fullmatch(r"switchboard-config-[a-z0-9]{10}", configmap["metadata"]["name"])
    for deployment in suite_deployments(overlay):
        refs = [e["configMapRef"]["name"] for e in container(deployment)["envFrom"]]
        assert refs == [configmap["metadata"]["name"]]


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_config_names_only_variables_the_code_reads(overlay: str) -> None:
    known = {name.upper() for name in CommonSettings.model_fields} | EXTRA_VARIABLES
    assert set(config(overlay)) <= known


@pytest.mark.parametrize(("deployment", "port"), GRPC_SERVICES.items())
def test_grpc_addresses_point_at_a_headless_service_and_the_probed_port(deployment: str, port: int) -> None:
    variable = deployment.upper().replace("-", "_") + "_ADDR"
    assert parse_address(config("base")[variable]) == (deployment, port)
    service = named("base", "Service", deployment)
    assert service["spec"]["clusterIP"] == "None", "headless: clients round-robin over every pod"
    assert service["spec"]["ports"][0]["port"] == port
    assert {"name": "grpc", "containerPort": port} in container(named("base", "Deployment", deployment))["ports"]


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_traffic_is_denied_unless_a_policy_allows_it(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(overlay, "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


GRPC_FLOWS = {
    *(("gateway", service) for service in GRPC_SERVICES),  # the gateway calls every service
    ("ami-ingest", "status"),  # the ingest streams its batches to the status service
    ("status", "ami-ingest"),  # the status service asks the ingest to resync
}
"""The gRPC calls between the suite's processes: (caller, service)."""


def pod_flows(overlay: str, direction: str) -> set[tuple[str, str, int]]:
    """(from, to, port) between two of the suite's processes that the policies open on one side:
    the egress rules of the caller (``direction="egress"``) or the ingress rules of the callee."""
    peers_key = "to" if direction == "egress" else "from"
    flows = set()
    for policy in of_kind(overlay, "NetworkPolicy"):
        own = policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        for rule in policy["spec"].get(direction, []):
            for peer in rule.get(peers_key, []):
                other = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                if own in DEPLOYMENTS and other in DEPLOYMENTS:
                    for port in rule["ports"]:
                        flows.add((own, other, port["port"]) if direction == "egress" else (other, own, port["port"]))
    return flows


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_the_policies_open_exactly_the_grpc_calls_between_processes_on_both_ends(overlay: str) -> None:
    expected = {(caller, service, GRPC_SERVICES[service]) for caller, service in GRPC_FLOWS}
    assert pod_flows(overlay, "egress") == expected
    assert pod_flows(overlay, "ingress") == expected


def test_dev_runs_the_dependencies_and_production_expects_them_outside() -> None:
    dev = {d["metadata"]["name"] for d in of_kind("dev", "Deployment")}
    production = {d["metadata"]["name"] for d in of_kind("production", "Deployment")}
    assert dev - production == {"redis", "postgres", "jaeger", "ami-feed"}
    assert config("dev")["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert config("production")["DEPLOYMENT_ENVIRONMENT"] == "production"
    assert not of_kind("production", "Secret"), "production Secrets are created out of band"


def test_the_image_tag_is_pinned_to_the_project_version() -> None:
    version = re.search(r'^version = "([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    for overlay in ("base", "production"):
        for deployment in suite_deployments(overlay):
            assert container(deployment)["image"] == f"registry.example.internal/switchboard:{version[1]}"


SECRET_READERS = {
    "ami-ingest-asterisk": {"ami-ingest"},
    "status-database": {"status"},
    "media-database": {"media", "media-worker", "media-sync-worker", "media-watermark-worker"},
    "switchboard-media-s3": {"media", "media-worker", "media-sync-worker", "media-watermark-worker"},
    "notify-database": {"notify", "notify-worker", "notify-telegram-worker"},
    "switchboard-notify-providers": {"notify", "notify-worker", "notify-telegram-worker"},
    "gateway-session": {"gateway"},
}
"""Which Deployments may mount each service-specific Secret: a process gets only the secrets it uses."""


def mounted_secrets(deployment: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    for env in container(deployment).get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            names.add(ref["name"])
    for env_from in container(deployment).get("envFrom", []):
        if "secretRef" in env_from:
            names.add(env_from["secretRef"]["name"])
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_secret_reaches_only_the_processes_that_use_it(overlay: str) -> None:
    for deployment in suite_deployments(overlay):
        name = deployment["metadata"]["name"]
        for secret in mounted_secrets(deployment):
            allowed = SECRET_READERS.get(secret)
            assert allowed is None or name in allowed, f"{name} mounts {secret}, which only {sorted(allowed)} use"
    assert "ami-ingest-asterisk" not in mounted_secrets(named(overlay, "Deployment", "status"))
