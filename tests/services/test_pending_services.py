"""media runs as its own process, serves its contract, and answers UNIMPLEMENTED for every
capability that has not landed yet (never fake data)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from switchboard.media.v1 import media_pb2, media_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port
from devsupport.procs import SpawnService, reflected_services


@pytest.mark.timeout(90)
def test_media_serves_its_contract_and_answers_unimplemented_for_what_has_not_landed(
    spawn: SpawnService, redis_url: str, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    process = spawn("services.media", env={"MEDIA_ADDR": address, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path)})
    process.wait_serving(address, "switchboard.media.v1.MediaService", timeout=60)
    assert "switchboard.media.v1.MediaService" in reflected_services(address)
    with sync_channel(address) as channel, pytest.raises(grpc.RpcError) as error:
        media_pb2_grpc.MediaServiceStub(channel).Cleanup(media_pb2.CleanupRequest(), timeout=5)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
