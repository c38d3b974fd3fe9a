"""A 100 MB request body against a real gateway process: how soon it is refused (413) and how much
the gateway's memory grows meanwhile; then slowloris connections and how many the gateway still
holds after its header timeout.

The client writes the body as fast as it can and reads at the same time, as curl does; it stops
writing when the answer arrives. Two bodies: one declaring its 100 MB ``Content-Length`` (refused
before a byte is read) and one chunked (refused once 1 MiB, GATEWAY_MAX_BODY_BYTES, has arrived).
The gateway's resident memory is sampled every 5 ms from /proc while each request runs.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from typing import Any

from bench._procfs import status_kib
from devsupport.auth import BOOTSTRAP_TOKEN
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess

BODY_BYTES = 100 * 1024 * 1024
CHUNK = b" " * (256 * 1024)
SLOWLORIS = 300
HEADER_TIMEOUT_SECONDS = 2.0
PATH = "/api/queues/workflow/jobs"


def _rss_bytes(pid: int) -> int:
    return status_kib(pid, "VmRSS") * 1024


class PeakRss:
    """The highest resident size of ``pid`` seen while the block runs, minus the size before it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = _rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes(self.pid))

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / (1024 * 1024)


async def _oversized(port: int, *, chunked: bool) -> tuple[int, float, int]:
    """(status, seconds to the answer, bytes the client got to send)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}"
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {BOOTSTRAP_TOKEN}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    started = time.perf_counter()
    answer = asyncio.ensure_future(reader.readuntil(b"\r\n"))
    sent = 0
    try:
        writer.write(head.encode())
        while not answer.done() and sent < BODY_BYTES:
            writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
            await writer.drain()
            sent += len(CHUNK)
    except ConnectionError:
        pass  # the gateway shut its side; the answer is already on its way
    status_line = await asyncio.wait_for(answer, timeout=30)
    elapsed = time.perf_counter() - started
    writer.close()
    return int(status_line.split()[1]), elapsed, sent


async def _slowloris(port: int) -> int:
    """Open SLOWLORIS connections that never finish their headers; how many are open a second after
    the header timeout."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(SLOWLORIS)]
    for _, writer in connections:
        writer.write(b"POST /api/queues HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    deadline = time.monotonic() + HEADER_TIMEOUT_SECONDS + 1.0
    while time.monotonic() < deadline:  # keep dribbling a header line, as slowloris does
        for _, writer in connections:
            if not writer.is_closing():
                writer.write(b"X-a: b\r\n")
        await asyncio.sleep(0.2)
    still_open = 0
    for reader, writer in connections:
        try:
            await asyncio.wait_for(reader.read(), timeout=0.5)  # returns once the gateway has closed it
        except TimeoutError:
            still_open += 1
        except ConnectionError:
            pass
        writer.close()
    return still_open


def run() -> list[dict[str, Any]]:
    data_dir = tempfile.mkdtemp(prefix="sb-gw-limits-")
    port = free_port()
    env = {
        "GATEWAY_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": data_dir,
        "GATEWAY_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
        "GATEWAY_MAX_CONNECTIONS_PER_CLIENT": str(SLOWLORIS + 10),
    }
    results: list[dict[str, Any]] = []
    with ServiceProcess.module("gateway", env=env) as gateway:
        gateway.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        for chunked in (False, True):
            with PeakRss(gateway.pid) as rss:
                status, elapsed, sent = asyncio.run(_oversized(port, chunked=chunked))
            kind = "chunked" if chunked else "Content-Length"
            label = f"100 MB body ({kind}), client sent {sent / 2**20:.1f} MB, load {os.getloadavg()[0]:.1f}"
            if status != 413:
                raise RuntimeError(f"{label}: answered {status}, not 413")
            results += [
                {"name": f"gateway 413 for a {label}", "value": elapsed, "unit": "s", "target": "<= 1",
                 "met": elapsed <= 1.0},
                {"name": f"gateway RSS growth for a {label}", "value": rss.growth_mb, "unit": "MB",
                 "target": "< 20", "met": rss.growth_mb < 20},
            ]  # fmt: skip
        held = asyncio.run(_slowloris(port))
        results.append(
            {
                "name": f"slowloris connections still held {HEADER_TIMEOUT_SECONDS + 1:g} s after opening "
                f"(of {SLOWLORIS}, header timeout {HEADER_TIMEOUT_SECONDS:g} s)",
                "value": held,
                "unit": "connections",
                "target": "0",
                "met": held == 0,
            }
        )
    return results


if __name__ == "__main__":
    for row in run():
        print(row)
