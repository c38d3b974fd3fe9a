"""The topology is defined once (runtime.config.Topology): every process reads it, none redefines it."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from gateway.settings import BACKEND_NAMES, GatewaySettings
from runtime.config import SERVICE_NAMES, CommonSettings, Topology, default_service_addresses
from scripts.local_plan import SERVICE_ADDRS, build_plan, load_procfile
from services.ami_ingest.settings import AmiIngestSettings
from services.media.settings import MediaSettings
from services.notify.settings import NotifySettings
from services.queue_admin.settings import QueueAdminSettings
from services.status.settings import StatusSettings
from services.workflow.settings import WorkflowSettings

PROCESS_SETTINGS: list[type[BaseSettings]] = [
    AmiIngestSettings,
    GatewaySettings,
    MediaSettings,
    NotifySettings,
    QueueAdminSettings,
    StatusSettings,
    WorkflowSettings,
]
SHARED_THRESHOLDS = ["status_stale_after_seconds"]


def test_every_service_has_one_address_variable_on_its_own_port() -> None:
    assert SERVICE_NAMES == ("status", "media", "notify", "ami_ingest", "queue_admin")
    defaults = default_service_addresses()
    assert list(defaults) == ["STATUS_ADDR", "MEDIA_ADDR", "NOTIFY_ADDR", "AMI_INGEST_ADDR", "QUEUE_ADMIN_ADDR"]
    assert len(set(defaults.values())) == len(defaults)


@pytest.mark.parametrize("settings_cls", PROCESS_SETTINGS, ids=lambda cls: cls.__name__)
def test_no_process_redefines_the_topology_or_a_shared_threshold(settings_cls: type[BaseSettings]) -> None:
    below_common = settings_cls.__mro__[: settings_cls.__mro__.index(CommonSettings)]
    declared = {name for cls in below_common for name in vars(cls).get("__annotations__", {})}
    assert declared & {*Topology.model_fields, *SHARED_THRESHOLDS} == set()
    assert {name for name in declared if name.endswith("_addr")} == set()


def test_an_address_set_in_the_environment_reaches_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_ADMIN_ADDR", "queue-admin:7000")
    monkeypatch.setenv("AMI_USERNAME", "board")  # ami_ingest has no default AMI login
    monkeypatch.setenv("AMI_SECRET", "board-secret")
    for settings_cls in PROCESS_SETTINGS:
        assert settings_cls().queue_admin_addr == "queue-admin:7000"  # type: ignore[attr-defined]


def test_the_gateway_dials_every_service_and_make_run_starts_them_where_the_runtime_says() -> None:
    assert BACKEND_NAMES == SERVICE_NAMES
    assert set(GatewaySettings().service_addresses()) == set(SERVICE_NAMES)
    assert default_service_addresses() == SERVICE_ADDRS
    plan = build_plan({}, redis_url="redis://127.0.0.1:6379/0", procfile=load_procfile())
    assert {name: plan.common_env[name] for name in SERVICE_ADDRS} == default_service_addresses()
