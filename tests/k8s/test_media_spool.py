"""The media service's spool (SQLite in WAL mode, unsafe on a network filesystem) is on each pod's
own disk in every overlay, never on the shared ``media-data`` volume, while DATA_DIR (the store, and
the spool markers the replicas' queue stats read) stays on it."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.k8s.render import OVERLAYS, of_kind


def mounted_volume(container: dict[str, Any], path: str) -> str:
    """The name of the volume whose mount holds ``path`` (the deepest mount above it)."""
    holding = [m for m in container.get("volumeMounts", []) if PurePosixPath(path).is_relative_to(m["mountPath"])]
    assert holding, f"{path} is on no volume"
    return str(max(holding, key=lambda m: len(m["mountPath"]))["name"])


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_each_media_pod_spools_to_its_own_emptydir_and_shares_only_data_dir(overlay: str) -> None:
    (media,) = [d for d in of_kind(overlay, "Deployment") if d["metadata"]["name"] == "media"]
    pod = media["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "media"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    volumes = {v["name"]: v for v in pod["volumes"]}

    spool = volumes[mounted_volume(container, env["MEDIA_SPOOL_PATH"])]
    assert "emptyDir" in spool
    assert "persistentVolumeClaim" not in spool

    (config,) = [c for c in of_kind(overlay, "ConfigMap") if c["metadata"]["name"].startswith("switchboard-config")]
    data_dir = volumes[mounted_volume(container, config["data"]["DATA_DIR"])]
    assert data_dir["persistentVolumeClaim"]["claimName"] == "media-data"
