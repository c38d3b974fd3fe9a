"""Drive a unary gRPC method with h2load (nghttp2's HTTP/2 load generator, written in C).

Why not Python clients for throughput: a grpc.aio client spends about as much CPU per call as
the server (~300 µs), so on a small machine the clients take the cores the service is being
measured on. h2load costs a few µs per request, the way a service's real callers on other hosts
cost it nothing. It speaks plain HTTP/2, which is all a unary gRPC call is: a POST to
``/package.Service/Method`` with ``content-type: application/grpc``, ``te: trailers`` and a
length-prefixed message as the body.

h2load does not read trailers, so it cannot see ``grpc-status``; :func:`check_answers` checks
the bytes instead: a fixed number of calls must bring exactly that many good answers' bytes (an
error reply carries no message).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devsupport.auth import BOOTSTRAP_TOKEN

H2LOAD = "h2load"
"""From Debian's nghttp2-client (``make bench`` installs it)."""


class H2LoadError(RuntimeError):
    """h2load is missing, failed, or the answers were not the expected ones."""


@dataclass(frozen=True)
class H2LoadResult:
    rate: float
    """Answers per second in the measured window."""
    requests: int
    succeeded: int
    data_bytes: int
    """Response body bytes (DATA frames) over all answers."""


def available() -> bool:
    return shutil.which(H2LOAD) is not None


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: flag 0 (not compressed), 4-byte big-endian length."""
    return struct.pack(">BI", 0, len(message)) + message


class H2LoadRun:
    """One h2load run in the background: :meth:`result` waits for it and reads its summary."""

    def __init__(self, command: list[str], body: Path, timeout: float) -> None:
        self._body = body
        self._timeout = timeout
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> H2LoadResult:
        try:
            stdout, stderr = self._process.communicate(timeout=self._timeout)
        finally:
            self._body.unlink(missing_ok=True)
        if self._process.returncode != 0:
            raise H2LoadError(f"h2load exited {self._process.returncode}: {stderr.strip() or stdout[-500:]}")
        result = parse_output(stdout)
        if result.succeeded == 0 or result.succeeded < result.requests:
            raise H2LoadError(f"calls failed:\n{stdout}")
        return result


def start_h2load(
    address: str,
    method: str,
    request: bytes,
    *,
    connections: int,
    streams_per_connection: int = 1,
    seconds: int | None = None,
    warm_up_seconds: int = 0,
    count: int | None = None,
) -> H2LoadRun:
    """Call ``method`` (``/pkg.Service/Method``) with ``request``, ``connections ×
    streams_per_connection`` calls in flight: for ``seconds`` after ``warm_up_seconds``
    (the rate counts only those seconds), or ``count`` calls in all."""
    if not available():
        raise H2LoadError("h2load is not installed (Debian package nghttp2-client; `make bench` installs it)")
    with tempfile.NamedTemporaryFile(prefix="h2load-body-", suffix=".bin", delete=False) as body:
        body.write(grpc_frame(request))
    command = [
        H2LOAD,
        f"--clients={connections}",
        f"--max-concurrent-streams={streams_per_connection}",
        f"--data={body.name}",
        "--header=content-type: application/grpc",
        "--header=te: trailers",
        f"--header=authorization: Bearer {BOOTSTRAP_TOKEN}",
    ]
    if seconds is not None:
        command += [f"--duration={seconds}", f"--warm-up-time={warm_up_seconds}"]
    else:
        command += [f"--requests={count or connections}"]
    command.append(f"http://{address}{method}")
    return H2LoadRun(command, Path(body.name), timeout=(seconds or 0) + warm_up_seconds + 60)


def check_answers(address: str, method: str, request: bytes, *, answer_size: int, count: int = 64) -> None:
    """Make ``count`` calls through h2load and check that each was answered with a message of
    ``answer_size`` bytes: h2load cannot see ``grpc-status``, an error reply would be shorter."""
    result = start_h2load(address, method, request, connections=1, count=count).result()
    expected = count * (answer_size + 5)  # each answer: 5-byte gRPC prefix + the message
    if result.succeeded != count or result.data_bytes != expected:
        raise H2LoadError(
            f"{result.succeeded}/{count} answers, {result.data_bytes} bytes where good answers make {expected}"
        )


_FINISHED = re.compile(r"finished in [\d.]+\w*, ([\d.]+) req/s")
_REQUESTS = re.compile(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded")
_TRAFFIC = re.compile(r"traffic: .* \((\d+)\) data")


def parse_output(text: str) -> H2LoadResult:
    """The figures of h2load's summary (its format since nghttp2 1.3x)."""
    finished, requests, traffic = _FINISHED.search(text), _REQUESTS.search(text), _TRAFFIC.search(text)
    if not (finished and requests and traffic):
        raise H2LoadError(f"unexpected h2load output:\n{text}")
    return H2LoadResult(
        rate=float(finished.group(1)),
        requests=int(requests.group(1)),
        succeeded=int(requests.group(2)),
        data_bytes=int(traffic.group(1)),
    )
