"""Each process is given the stores it uses (Redis, its database) and may reach exactly those."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.k8s.render import of_kind

SUITE = "switchboard"
NOTIFY = {"notify", "notify-worker", "notify-telegram-worker"}
# The policy that opens each store's port, per overlay.
EGRESS = {
    "dev": {"redis": "redis-clients-egress", "database": "postgres-clients-egress"},
    "production": {"redis": "redis-egress", "database": "postgres-egress"},
}


def projected_secrets(deployment: dict[str, Any]) -> list[str]:
    volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
    return [
        source["secret"]["name"]
        for volume in volumes
        for source in volume.get("projected", {}).get("sources", [])
        if "secret" in source
    ]


def given(overlay: str, store: str) -> set[str]:
    """The suite's processes that mount a Secret for ``store`` (``-redis`` / ``-database``; the
    ``switchboard-auth`` Secret holds AUTH_DATABASE_URL, the database of the API keys)."""
    markers = ("switchboard-redis",) if store == "redis" else ("-database", "switchboard-auth")
    return {
        d["metadata"]["name"]
        for d in of_kind(overlay, "Deployment")
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == SUITE
        and any(marker in name for name in projected_secrets(d) for marker in markers)
    }


def allowed(overlay: str, policy: str) -> set[str]:
    (found,) = [p for p in of_kind(overlay, "NetworkPolicy") if p["metadata"]["name"] == policy]
    (expression,) = found["spec"]["podSelector"]["matchExpressions"]
    return set(expression["values"])


@pytest.mark.parametrize("overlay", list(EGRESS))
@pytest.mark.parametrize("store", ["redis", "database"])
def test_the_processes_given_a_store_are_the_ones_allowed_to_reach_it(overlay: str, store: str) -> None:
    users = given(overlay, store)
    assert users >= NOTIFY, "the notify service and both its workers keep records and queue jobs"
    assert allowed(overlay, EGRESS[overlay][store]) == users


def test_every_database_secret_of_the_dev_overlay_holds_a_database_url() -> None:
    secrets = {s["metadata"]["name"]: s for s in of_kind("dev", "Secret")}
    referenced = {name for d in of_kind("dev", "Deployment") for name in projected_secrets(d) if "-database" in name}
    assert {name.rsplit("-", 1)[0] for name in referenced} >= {"notify-database"}
    for name in referenced:
        url = base64.b64decode(secrets[name]["data"]["DATABASE_URL"]).decode()
        assert url.startswith("postgresql://")
        assert "@postgres:5432/" in url
