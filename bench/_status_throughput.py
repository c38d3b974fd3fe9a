"""GetSnapshot throughput: concurrent Python clients, and h2load (bench/_h2load.py).

Python clients (asyncio, spread over client processes, a TCP connection per
:data:`CLIENTS_PER_CONNECTION` clients, answers received as bytes) spend about as much CPU per
call as the server, so on a 2-core machine they take the cores being measured: their rate is
information. h2load, a C HTTP/2 load generator, costs a few µs per call and drives the target
row. Beside each rate, the server's CPU time per answer, which unlike the rate does not depend
on how much of the shared machine the server got.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import grpc
import grpc.aio
from switchboard.status.v1 import status_pb2

from bench._h2load import check_answers, start_h2load
from bench._status_service import OWN_CONNECTION, SNAPSHOT_METHOD, process_cpu_seconds, server_pids
from devsupport.auth import aio_channel, sync_channel

CLIENT_PROCESSES = 2
"""Throughput clients run in this many processes: one Python process tops out near the target."""
CLIENTS_PER_CONNECTION = 2
"""Several connections per client process, so SO_REUSEPORT can spread them over the workers."""


async def _throughput_clients(address: str, clients: int, start_at: float, seconds: float) -> tuple[int, float]:
    """Run ``clients`` concurrent callers; count the answers between ``start_at`` and + ``seconds``
    (wall clock), and this client process's CPU seconds in that window."""
    channels = [aio_channel(address, options=OWN_CONNECTION) for _ in range(max(1, clients // CLIENTS_PER_CONNECTION))]
    request = status_pb2.GetSnapshotRequest().SerializeToString()
    calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [ch.unary_unary(SNAPSHOT_METHOD) for ch in channels]
    done = 0

    async def client(index: int) -> None:
        nonlocal done
        call = calls[index % len(calls)]
        while time.time() < start_at + seconds:
            await call(request, timeout=5)
            if time.time() >= start_at:
                done += 1

    cpu: list[float] = []

    async def clock_cpu() -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu.append(time.process_time())
        await asyncio.sleep(max(0.0, start_at + seconds - time.time()))
        cpu.append(time.process_time())

    await asyncio.gather(clock_cpu(), *(client(i) for i in range(clients)))  # warms up until start_at
    for ch in channels:
        await ch.close()
    return done, cpu[1] - cpu[0]


def _throughput_process(address: str, clients: int, start_at: float, seconds: float) -> tuple[int, float]:
    return asyncio.run(_throughput_clients(address, clients, start_at, seconds))


@dataclass(frozen=True)
class Throughput:
    rate: float
    """Answers per second."""
    cpu_per_call_us: float
    """Server CPU (all its processes) per answer."""
    server_cores: float
    client_cores: float
    shares: list[float]
    """Each server process's share of the server CPU, %."""

    def describe(self) -> str:
        split = "/".join(f"{share:.0f}" for share in self.shares)
        workers = f"workers' CPU {split} %, " if len(self.shares) > 1 else ""
        return f"snapshots/s ({workers}cores used: server {self.server_cores:.2f}, clients {self.client_cores:.2f})"


def snapshot_throughput(
    address: str, server_pid: int, clients: int = 16, seconds: float = 3.0, processes: int = CLIENT_PROCESSES
) -> Throughput:
    """Snapshots/s with ``clients`` concurrent callers spread over ``processes`` client processes,
    and where the machine's CPU went. Answers are received as bytes: parsing them would measure
    the clients, not the service."""
    pids = server_pids(server_pid)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        list(pool.map(abs, range(processes)))  # the workers are up before the clock starts
        start_at = time.time() + 1.0  # 1 s of warm-up traffic first
        futures = [
            pool.submit(_throughput_process, address, clients // processes, start_at, seconds) for _ in range(processes)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before = [process_cpu_seconds(pid) for pid in pids]
        time.sleep(seconds)
        cpu_used = [process_cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
        answers = [future.result() for future in futures]
    done = sum(count for count, _ in answers)
    client_cores = sum(cpu for _, cpu in answers) / seconds
    total = sum(cpu_used)
    shares = [used / total * 100 if total else 0.0 for used in cpu_used]
    return Throughput(done / seconds, total / max(done, 1) * 1e6, total / seconds, client_cores, shares)


def snapshot_throughput_h2load(
    address: str, server_pid: int, clients: int = 16, rounds: int = 3, seconds: int = 4
) -> tuple[list[float], float]:
    """Snapshots/s with ``clients`` concurrent callers driven by h2load (a connection each, one
    call in flight on it), in ``rounds`` runs after a warm-up, and the server CPU per answer.
    The answers are checked first: h2load itself cannot tell a gRPC error from a good answer."""
    with sync_channel(address) as channel:
        snapshot: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(SNAPSHOT_METHOD)
        answer = snapshot(b"", timeout=5)
    check_answers(address, SNAPSHOT_METHOD, b"", answer_size=len(answer))
    pids = server_pids(server_pid)
    rates: list[float] = []
    cpu_seconds = 0.0
    answers = 0
    warm_up = 2  # connections open and their HTTP/2 flow-control windows grow
    for _ in range(rounds):
        run = start_h2load(address, SNAPSHOT_METHOD, b"", connections=clients, seconds=seconds, warm_up_seconds=warm_up)
        time.sleep(warm_up + 0.2)
        before = sum(process_cpu_seconds(pid) for pid in pids)
        time.sleep(seconds - 0.4)
        cpu_seconds += sum(process_cpu_seconds(pid) for pid in pids) - before
        result = run.result()
        rates.append(result.rate)
        answers += round(result.rate * (seconds - 0.4))
    return rates, cpu_seconds / max(answers, 1) * 1e6
