"""Production reaches Asterisk over TLS, with the settings ami_ingest reads and a port the policies
open; the gateway reaches Redis, where key revocations are announced; every process that checks
API keys reaches the one auth database."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from runtime.config import CommonSettings
from services.ami_ingest.settings import AmiIngestSettings
from tests.k8s.render import of_kind
from tests.k8s.test_manifests import config, container, named
from tests.k8s.test_stores import EGRESS, allowed, given


def ami_ingest_env(overlay: str) -> dict[str, str]:
    env = container(named(overlay, "Deployment", "ami-ingest")).get("env", [])
    return {item["name"]: item["value"] for item in env if "value" in item}


def test_production_ami_ingest_speaks_tls_and_checks_the_certificate_against_the_mounted_ca() -> None:
    env = ami_ingest_env("production")
    settings = AmiIngestSettings.model_validate(
        {"ami_tls": env["AMI_TLS"], "ami_tls_ca": env["AMI_TLS_CA"], "ami_username": "u", "ami_secret": "s"}
    )
    assert settings.ami_tls is True
    assert settings.ami_tls_ca is not None
    # The CA file comes with the ami-ingest-asterisk Secret, mounted where SECRETS_DIR points.
    assert settings.ami_tls_ca.parent == Path(config("production")["SECRETS_DIR"])


def test_only_ami_ingest_gets_the_ami_tls_settings() -> None:
    for deployment in of_kind("production", "Deployment"):
        if deployment["metadata"]["name"] != "ami-ingest":
            names = {item["name"] for item in container(deployment).get("env", [])}
            assert not {n for n in names if n.startswith("AMI_")}, deployment["metadata"]["name"]


def test_the_asterisk_egress_opens_the_ami_tls_port() -> None:
    (policy,) = [p for p in of_kind("production", "NetworkPolicy") if p["metadata"]["name"] == "asterisk-egress"]
    ports = {port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"]}
    assert 5039 in ports


def test_development_keeps_plain_ami_against_its_simulated_pbx() -> None:
    assert "AMI_TLS" not in ami_ingest_env("dev")


@pytest.mark.parametrize("overlay", list(EGRESS))
def test_the_gateway_reaches_redis_to_hear_of_revoked_keys_at_once(overlay: str) -> None:
    assert "gateway" in given(overlay, "redis")
    assert "gateway" in allowed(overlay, EGRESS[overlay]["redis"])


CHECKS_CREDENTIALS = {"gateway", "status", "media", "notify", "queue-admin", "ami-ingest"}


@pytest.mark.parametrize("overlay", list(EGRESS))
def test_every_process_that_checks_api_keys_reaches_the_one_auth_database(overlay: str) -> None:
    assert given(overlay, "database") >= CHECKS_CREDENTIALS
    assert allowed(overlay, EGRESS[overlay]["database"]) >= CHECKS_CREDENTIALS


def test_the_dev_auth_secret_names_the_shared_auth_database() -> None:
    (secret,) = [s for s in of_kind("dev", "Secret") if s["metadata"]["name"].startswith("switchboard-auth")]
    url = base64.b64decode(secret["data"]["AUTH_DATABASE_URL"]).decode()
    assert CommonSettings(auth_database_url=url).auth_store_url.startswith("postgresql+asyncpg://")
