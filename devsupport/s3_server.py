"""moto's standalone S3 server on a free loopback port: tests, benchmarks and the failover drill."""

from __future__ import annotations

import sys
import urllib.request

from devsupport.ports import free_port
from devsupport.procs import ServiceProcess, http_status

__all__ = ["S3Server"]


class S3Server:
    """moto's standalone S3 server (``moto[server]``): a real HTTP endpoint boto3 talks to."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ServiceProcess(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)], name="moto-s3"
        )

    def start(self) -> None:
        self.process.start()
        self.process.wait_http(f"{self.url}/moto-api/", timeout=30)

    def close(self) -> None:
        self.process.close()

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def answering(self) -> bool:
        return http_status(f"{self.url}/moto-api/") == 200
