"""Media end to end: uploads through the gateway to ready variants, and a 50-megapixel upload's
peak worker memory.

Everything runs as it does in production, as processes: Redis, ``python -m services.media``, one
``python -m services.media.worker`` (concurrency 5) and the gateway.

1. ``UPLOADS`` (100) uploads of the shared photos through ``POST /api/admin/media/upload-async``,
   ``CONCURRENCY`` (8) at a time, each under its own owner (so none is a duplicate). The clock of
   an upload runs from the start of its POST to its ``ready`` event on the gateway's SSE stream.
   Figures: how many reached ``ready``, images/s (uploads over the time from the first POST to the
   last ``ready``), upload→ready p50 and p99.
2. A fresh worker process takes one 50-megapixel JPEG (8660×5773, made from a test photo) from
   upload to ready; its peak RSS (``VmHWM``) is the figure.

    python -m bench.media_e2e_bench     # prints the rows as JSON
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench._procfs import status_kib
from devsupport.auth import AUTH_HEADERS
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer

IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "media-images"
UPLOADS = 100
CONCURRENCY = 8
FIFTY_MP = (8660, 5773)  # 49.99 megapixels: just inside MEDIA_MAX_PIXELS' default of 50
READY_WITHIN_S = 600.0
POLL_S = 5.0


def row(name: str, value: float, unit: str, target: str, met: bool) -> dict[str, Any]:
    result = {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": met}
    print(json.dumps(result), file=sys.stderr, flush=True)  # progress: each figure as it is measured
    return result


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0-1) of ``values``, linearly interpolated (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident set (``VmHWM``), in MB."""
    return status_kib(pid, "VmHWM") / 1024


@dataclass
class Suite:
    gateway: str
    env: dict[str, str]


@contextmanager
def worker(env: dict[str, str]) -> Iterator[ServiceProcess]:
    process = ServiceProcess.module("services.media.worker", env=env).start()
    try:
        yield process
    finally:
        process.close()


@asynccontextmanager
async def suite(data_dir: Path) -> AsyncIterator[Suite]:
    redis = RedisServer()
    redis.start()
    media_addr, gateway_port = f"127.0.0.1:{free_port()}", free_port()
    env = {
        "REDIS_URL": redis.url,
        "DATA_DIR": str(data_dir),
        "MEDIA_ADDR": media_addr,
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_STATUS_MIRROR": "false",
        "LOG_LEVEL": "WARNING",
        "METRICS_PORT": "-1",
        "RPC_TIMEOUT_SECONDS": "60",
    }
    service = ServiceProcess.module("services.media", env=env).start()
    gateway = ServiceProcess.module("gateway", env=env).start()
    try:
        service.wait_serving(media_addr, "switchboard.media.v1.MediaService", timeout=120)
        gateway.wait_http(f"http://127.0.0.1:{gateway_port}/healthz", timeout=120)
        yield Suite(f"http://127.0.0.1:{gateway_port}", env)
    finally:
        for process in (gateway, service):
            process.close()
        redis.close()


class ReadyWatch:
    """The gateway's SSE stream of media events: when each media became ``ready`` (monotonic)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.ready_at: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.live = asyncio.Event()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReadyWatch:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.live.wait(), timeout=60)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        while True:  # a dropped stream is reopened; what it missed, until_ready's polling finds
            with contextlib.suppress(httpx.HTTPError):
                await self._read_stream()
            await asyncio.sleep(0.5)

    async def _read_stream(self) -> None:
        event = ""
        async with self.client.stream("GET", "/api/admin/media/events", timeout=None) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "ready":
                    self.live.set()
                elif line.startswith("data:") and event == "media":
                    data = json.loads(line.split(":", 1)[1])
                    self._saw(data["mediaId"], data["state"], data["error"])

    def _saw(self, media_id: str, state: str, error: str) -> None:
        if state == "ready":
            self.ready_at.setdefault(media_id, time.monotonic())
        elif state == "failed":
            self.failed[media_id] = error
        self.changed.set()

    async def until_ready(self, media_ids: set[str]) -> None:
        """Until every one of ``media_ids`` is ready or failed, or ``READY_WITHIN_S`` has passed
        (the figures then show how many did not make it). Quiet for ``POLL_S``: read the states."""
        deadline = time.monotonic() + READY_WITHIN_S
        while (missing := media_ids - set(self.ready_at) - set(self.failed)) and time.monotonic() < deadline:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=POLL_S)
            except TimeoutError:
                for media_id in missing:
                    media = (await self.client.get(f"/api/admin/media/{media_id}")).json()["data"]
                    if media["state"] in ("ready", "failed"):
                        self._saw(media_id, media["state"], media["error"])


async def upload(client: httpx.AsyncClient, data: bytes, filename: str, owner: str) -> str:
    files = {"file": (filename, data, "application/octet-stream")}
    answer = await client.post("/api/admin/media/upload-async", params={"ownerId": owner}, files=files)
    answer.raise_for_status()
    media_id: str = answer.json()["data"]["mediaId"]
    return media_id


def photos() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(IMAGES.iterdir()) if p.suffix in {".jpg", ".png"}]


async def end_to_end(s: Suite) -> list[dict[str, Any]]:
    images = photos()
    gate = asyncio.Semaphore(CONCURRENCY)
    started: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=s.gateway, timeout=120, headers=AUTH_HEADERS) as client:
        with worker(s.env):
            async with ReadyWatch(client) as watch:

                async def one(index: int) -> None:
                    name, data = images[index % len(images)]
                    async with gate:
                        at = time.monotonic()
                        media_id = await upload(client, data, name, owner=f"bench-e2e-{index}")
                    started[media_id] = at

                first = time.monotonic()
                await asyncio.gather(*(one(i) for i in range(UPLOADS)))
                await watch.until_ready(set(started))
    ready = {m: watch.ready_at[m] - at for m, at in started.items() if m in watch.ready_at}
    latencies = list(ready.values()) or [float("nan")]
    rate = len(ready) / (max(watch.ready_at[m] for m in ready) - first) if ready else 0.0
    p50, p99 = (percentile(latencies, q) for q in (0.5, 0.99)) if ready else (0.0, 0.0)
    noisy = " (measured under load on a shared machine)"
    return [
        row(
            f"media e2e: uploads reaching ready of {UPLOADS}, {CONCURRENCY} at a time",
            len(ready),
            "uploads",
            f">= {UPLOADS}",
            len(ready) == UPLOADS,
        ),
        row("media e2e: images/s, gateway → ready, 1 worker process", rate, "img/s" + noisy, "info", True),
        row("media e2e: upload → ready p50", p50 * 1000, "ms" + noisy, "info", True),
        row("media e2e: upload → ready p99", p99 * 1000, "ms" + noisy, "info", True),
    ]


def fifty_megapixel_jpeg() -> bytes:
    with Image.open(IMAGES / "kleiber.jpg") as photo:
        big = photo.convert("RGB").resize(FIFTY_MP, Image.Resampling.BILINEAR)
    path = Path(tempfile.mkdtemp(prefix="media-bench-50mp-")) / "fifty_mp.jpg"
    big.save(path, "JPEG", quality=85)
    del big
    return path.read_bytes()


async def fifty_megapixel_memory(s: Suite) -> list[dict[str, Any]]:
    data = fifty_megapixel_jpeg()
    async with httpx.AsyncClient(base_url=s.gateway, timeout=300, headers=AUTH_HEADERS) as client:
        with worker(s.env) as process:
            async with ReadyWatch(client) as watch:
                media_id = await upload(client, data, "fifty_mp.jpg", owner="bench-50mp")
                await watch.until_ready({media_id})
            if media_id not in watch.ready_at:
                raise RuntimeError(f"the 50-megapixel upload did not become ready: {watch.failed.get(media_id)}")
            peak = peak_rss_mb(process.pid)
    megabytes = len(data) / 1e6
    return [
        row(
            f"media worker process peak RSS, 50-megapixel JPEG ({megabytes:.1f} MB) upload → ready",
            peak,
            "MB",
            "<= 400",
            peak <= 400,
        )
    ]


async def measure() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="media-e2e-bench-") as data_dir:
        async with suite(Path(data_dir)) as s:
            return [*await end_to_end(s), *await fifty_megapixel_memory(s)]


def run() -> list[dict[str, Any]]:
    return asyncio.run(measure())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
