"""Hot reads stay out of the INFO log when they succeed quickly; their errors are still logged."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import grpc
import pytest
import structlog
from switchboard.status.v1 import status_pb2

from tests.status.harness import RunningStatus

pb = status_pb2


def finished(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == "rpc finished"]


async def test_a_successful_snapshot_read_writes_no_info_line(status: RunningStatus) -> None:
    with structlog.testing.capture_logs() as logs:
        await status.stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=5)
        await status.stub.GetSyncStatus(pb.GetSyncStatusRequest(), timeout=5)
    lines = finished(logs)
    assert [line["method"] for line in lines] == ["/switchboard.status.v1.StatusService/GetSyncStatus"]
    assert lines[0]["log_level"] == "info"


async def test_a_failed_read_is_still_logged_with_its_code(status: RunningStatus) -> None:
    with structlog.testing.capture_logs() as logs, pytest.raises(grpc.aio.AioRpcError):
        await status.stub.GetOperator(pb.GetOperatorRequest(member_id="PJSIP/404"), timeout=5)
    [line] = finished(logs)
    assert line["method"] == "/switchboard.status.v1.StatusService/GetOperator"
    assert line["code"] == "NOT_FOUND"
    assert line["log_level"] == "info"
