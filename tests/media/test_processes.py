"""The media service and its workers as the processes `make run` and Kubernetes start."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from switchboard.media.v1 import media_pb2, media_pb2_grpc

from devsupport.auth import aio_channel
from devsupport.ports import free_port
from devsupport.procs import SpawnService
from devsupport.waiting import wait_until
from tests.media.images import shared
from tests.media.support import MediaClient
from tests.media.test_metrics import scraped


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_service_and_worker_processes_take_an_upload_to_ready_watermark_it_and_stop_cleanly(
    spawn: SpawnService, redis_url: str, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {"REDIS_URL": redis_url, "DATA_DIR": str(tmp_path), "MEDIA_ADDR": address, "LOG_FORMAT": "console"}
    service_metrics, worker_metrics = free_port(), free_port()
    service = spawn("services.media", env={**env, "METRICS_PORT": str(service_metrics)})
    worker = spawn("services.media.worker", env={**env, "METRICS_PORT": str(worker_metrics)})
    watermarker = spawn("services.media.worker", "watermark", env=env)
    sync_metrics = free_port()
    sync_worker = spawn("services.media.worker", "sync", env={**env, "METRICS_PORT": str(sync_metrics)})
    service.wait_serving(address, "switchboard.media.v1.MediaService", timeout=40)
    async with aio_channel(address) as channel:
        client = MediaClient(media_pb2_grpc.MediaServiceStub(channel), channel)
        answer = await client.upload(shared("sk_hubble.jpg"), owner_id="ops")
        ready = await client.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_READY, within=60)
        assert [v.name for v in ready.variants] == ["thumb", "medium", "large"]
        await client.stub.Watermark(
            media_pb2.WatermarkRequest(media_id=ready.media_id, text="ACME", variants=["thumb"]), timeout=10
        )

        async def thumb_watermarked() -> bool:
            return "thumb.watermarked" in [v.name for v in (await client.get(ready.media_id)).variants]

        await wait_until(thumb_watermarked, within=60, what="thumb watermarked by the worker process")
    # The queue sizes come from the service, which measures them; a worker has none, rather than zeros.
    service_samples = await scraped(f"http://127.0.0.1:{service_metrics}/metrics")
    worker_samples = await scraped(f"http://127.0.0.1:{worker_metrics}/metrics")
    assert ("media_processing_queue_size", ()) in service_samples
    assert ("media_processing_jobs_total", (("status", "ready"),)) in worker_samples
    assert not [k for k in worker_samples if k[0].startswith("media_") and k[0].endswith("_queue_size")]
    assert service.stop(signal.SIGTERM, timeout=15) == 0
    assert worker.stop(signal.SIGTERM, timeout=15) == 0
    assert watermarker.stop(signal.SIGTERM, timeout=15) == 0
    # The sync worker serves its queue without S3 (the embedded default) until SIGTERM.
    sync_worker.wait_http(f"http://127.0.0.1:{sync_metrics}/readyz", timeout=40)
    assert sync_worker.stop(signal.SIGTERM, timeout=15) == 0
