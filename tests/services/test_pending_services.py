"""media runs as its own process, serves its contract, and answers UNIMPLEMENTED for every
capability that has not landed yet (never fake data)."""

from __future__ import annotations

import grpc
import pytest
from switchboard.media.v1 import media_pb2, media_pb2_grpc

from tests.conftest import SpawnService
from tests.support.ports import free_port
from tests.support.procs import reflected_services


@pytest.mark.timeout(40)
def test_media_serves_its_contract_and_answers_unimplemented(spawn: SpawnService) -> None:
    address = f"127.0.0.1:{free_port()}"
    process = spawn("services.media", env={"MEDIA_ADDR": address})
    process.wait_serving(address, "switchboard.media.v1.MediaService")
    assert "switchboard.media.v1.MediaService" in reflected_services(address)
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as error:
        media_pb2_grpc.MediaServiceStub(channel).GetStats(media_pb2.GetStatsRequest(), timeout=5)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
