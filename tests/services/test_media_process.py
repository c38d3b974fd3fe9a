"""media runs as its own process (``python -m services.media``), lists its contract over
reflection and answers on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from switchboard.media.v1 import media_pb2, media_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port
from devsupport.procs import SpawnService, reflected_services


@pytest.mark.timeout(90)
def test_media_runs_as_its_own_process_and_serves_its_contract(
    spawn: SpawnService, redis_url: str, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    process = spawn("services.media", env={"MEDIA_ADDR": address, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path)})
    process.wait_serving(address, "switchboard.media.v1.MediaService", timeout=60)
    assert "switchboard.media.v1.MediaService" in reflected_services(address)
    with sync_channel(address) as channel:
        listed = media_pb2_grpc.MediaServiceStub(channel).ListMedia(media_pb2.ListMediaRequest(), timeout=10)
    assert (list(listed.media), listed.total) == ([], 0)
