"""There is no default AMI login: ami_ingest and the demo feed refuse to start without one."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from devsupport.procs import child_env
from services.ami_ingest.settings import AmiIngestSettings


@pytest.mark.parametrize(
    "given", [{}, {"ami_username": "board"}, {"ami_secret": "s3cret"}], ids=["neither", "no secret", "no username"]
)
def test_settings_without_an_ami_login_are_refused(given: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="AMI_USERNAME and AMI_SECRET must be set"):
        AmiIngestSettings(**given)  # type: ignore[arg-type]


def test_settings_with_a_login_keep_it_secret() -> None:
    settings = AmiIngestSettings(ami_host="pbx.example", ami_username="board", ami_secret="s3cret")  # type: ignore[arg-type]
    assert settings.ami_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("module", ["services.ami_ingest", "services.ami_ingest.simulator"])
def test_the_process_refuses_to_start_without_a_login(module: str) -> None:
    env = {k: v for k, v in child_env({"AMI_HOST": "127.0.0.1"}).items() if k not in {"AMI_USERNAME", "AMI_SECRET"}}
    finished = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode != 0
    assert "AMI_USERNAME" in finished.stdout + finished.stderr
