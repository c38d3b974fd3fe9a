"""Without S3_BUCKET (the embedded default) a manual sync is refused, naming what is missing."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("operation", ["upload", "download", "delete"])
async def test_a_sync_without_s3_configured_is_refused_naming_s3_bucket(
    gateway: httpx.AsyncClient, operation: str
) -> None:
    response = await gateway.post("/api/admin/media/sync", json={"all": True, "operation": operation})
    assert response.status_code == 400
    assert "S3_BUCKET" in response.json()["error"]["message"]
