"""The floor of the live path's gRPC streams: ``python -m bench._grpc_stream_floor relay|push ...``.

The AMI event → WatchSnapshot path crosses two gRPC streams between three processes (the ingest's
``Ingest`` stream into the status service, the status service's ``WatchSnapshot`` stream out) with
one Redis round trip between them. This module is that shape with nothing of ours in it: bare
grpc.aio servers and clients on uvloop (the loop the services run on), raw bytes (no protobuf, no
handler layers, no span), so the latency it measures is what grpcio and the loop cost by
themselves, the part of the live figure no change to the services can take away.

- ``relay [--port P] [--redis URL] [--emit RATE]``: serves ``/floor.Relay/Push`` (a stream of
  messages in, one empty answer per message back, as the status service acks each batch) and
  ``/floor.Relay/Watch`` (every message pushed, to every watcher). With ``--redis`` the messages
  that arrived while the last PING was out wait for one PING together before they are relayed (the
  status service applies the batches read ahead in one EVALSHA); with
  ``--emit`` the relay itself sends a message to its watchers ``RATE`` times a second (one hop).
  Prints ``ready PORT`` once it serves (``--port 0``, the default: a port the OS picks, so no
  other process can take it between choosing and binding); stops on SIGTERM.
- ``push --target ADDR --rate R --count N``: takes ``N`` stamps (``time.time()``), ``R`` a second,
  and pushes them on one ``Push`` stream: one message as soon as it is taken, or the stamps taken
  while the last write was in flight, or while :data:`MAX_IN_FLIGHT` messages awaited their
  answer, together in one message (as the ingest's publisher does). Without that window the
  relay paid its per-message gRPC work once per stamp at any load, and at 2,000/s the "floor"
  queued behind itself (p99 tens of ms) while the live path, which has the window, did not.

A message is at least :data:`MESSAGE_BYTES` long (a one-operator change set is about that) and
starts with its stamps (8-byte doubles, then zeros); :func:`watch_latencies` (the benchmark's
process) stamps each one's arrival.
:func:`floor_latencies` runs both shapes at one rate (bench/live_status_bench.py prints them beside
the live figures of the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import redis.asyncio

from bench._live_status_procs import module_process
from devsupport.procs import ServiceProcess
from runtime.event_loop import event_loop_factory
from services.ami_ingest.publisher import MAX_IN_FLIGHT

SERVICE = "floor.Relay"
PUSH = f"/{SERVICE}/Push"
WATCH = f"/{SERVICE}/Watch"
MESSAGE_BYTES = 200
STAMP = struct.Struct("<d")


def _as_is(data: bytes) -> bytes:
    return data


def stamped() -> bytes:
    return STAMP.pack(time.time()).ljust(MESSAGE_BYTES, b"\0")


class Relay:
    def __init__(self, redis_url: str | None) -> None:
        self.watchers: set[asyncio.Queue[bytes]] = set()
        self.redis = redis.asyncio.Redis.from_url(redis_url) if redis_url else None

    def offer(self, message: bytes) -> None:
        for queue in self.watchers:
            queue.put_nowait(message)

    async def push(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        """Relay what was pushed: what arrived while the last PING was out goes with one PING (the
        status service applies the batches read ahead in one EVALSHA), then one answer each."""
        arrived: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for message in requests:
                    arrived.put_nowait(message)
            finally:
                arrived.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            ended = False
            while not ended:
                group = [await arrived.get()]
                while not arrived.empty():
                    group.append(arrived.get_nowait())
                ended = group[-1] is None
                messages = [message for message in group if message is not None]
                if messages and self.redis is not None:
                    await self.redis.ping()
                for message in messages:
                    self.offer(message)
                for _ in messages:
                    yield b""
        finally:
            reader.cancel()

    async def watch(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.watchers.add(queue)
        try:
            yield b""  # subscribed: the watcher knows it will see every later message
            while True:
                yield await queue.get()
        finally:
            self.watchers.discard(queue)

    async def emit(self, rate: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += 1 / rate
            await asyncio.sleep(max(due - loop.time(), 0.0))
            self.offer(stamped())


async def relay(port: int, redis_url: str | None, emit: float) -> None:
    server = grpc.aio.server()
    hub = Relay(redis_url)
    handlers = {
        "Push": grpc.stream_stream_rpc_method_handler(hub.push, _as_is, _as_is),
        "Watch": grpc.unary_stream_rpc_method_handler(hub.watch, _as_is, _as_is),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    emitting = asyncio.create_task(hub.emit(emit)) if emit else None
    if hub.redis is not None:
        await hub.redis.ping()  # connected before the first message
    print(f"ready {port}", flush=True)
    await stop.wait()
    if emitting is not None:
        emitting.cancel()
    await server.stop(0)


class _Window:
    """Messages pushed and not answered yet; the pusher waits while :data:`MAX_IN_FLIGHT` are."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.answered = asyncio.Event()

    async def room(self) -> None:
        while self.in_flight >= MAX_IN_FLIGHT:
            self.answered.clear()
            await self.answered.wait()

    async def drain(self, call: Any) -> None:
        async for _ in call:
            self.in_flight -= 1
            self.answered.set()


async def push(target: str, rate: float, count: int) -> None:
    """``count`` stamps, ``rate`` a second; the stamps taken while a write was in flight, or while
    the window was full, go in the next message together, as the ingest's publisher joins the
    changes queued meanwhile."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.stream_stream(PUSH, request_serializer=_as_is, response_deserializer=_as_is)()
        loop = asyncio.get_running_loop()
        window = _Window()
        acks = asyncio.create_task(window.drain(call))
        stamps: list[bytes] = []
        taken = asyncio.Event()

        async def produce() -> None:
            started = loop.time()
            for index in range(1, count + 1):
                await asyncio.sleep(max(started + index / rate - loop.time(), 0.0))
                stamps.append(STAMP.pack(time.time()))
                taken.set()

        producing = asyncio.create_task(produce())
        while not (producing.done() and not stamps):
            await taken.wait()
            taken.clear()
            await window.room()
            if stamps:
                message = b"".join(stamps).ljust(MESSAGE_BYTES, b"\0")
                stamps.clear()
                window.in_flight += 1
                await call.write(message)
        await producing
        await call.done_writing()
        await acks


async def watch_latencies(target: str, ready: asyncio.Event, into: list[float]) -> None:
    """Append to ``into`` the ms from each message's stamp to its arrival here, until cancelled;
    sets ``ready`` once subscribed."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_stream(WATCH, request_serializer=_as_is, response_deserializer=_as_is)(b"")
        try:
            async for message in call:
                now = time.time()
                if not message:
                    ready.set()
                for (stamp,) in STAMP.iter_unpack(message[: len(message) // STAMP.size * STAMP.size]):
                    if not stamp:
                        break  # the padding
                    into.append((now - stamp) * 1000)
        finally:
            call.cancel()


def floor_latencies(redis_url: str, rate: float, seconds: float, warmup: float) -> tuple[list[float], list[float]]:
    """ms per message after ``warmup`` s, at ``rate`` messages/s for ``seconds`` s: one hop (the relay
    sends), then the live path's shape (push stream → relay with one PING → watch stream)."""
    with module_process(__name__, "relay", "--emit", str(rate), ready_text="ready") as one:
        one_hop = _watch(_relay_address(one), lambda: time.sleep(seconds))
    with module_process(__name__, "relay", "--redis", redis_url, ready_text="ready") as two:
        count = str(int(rate * seconds))
        args = ("push", "--target", _relay_address(two), "--rate", str(rate), "--count", count)

        def pushing() -> None:
            with module_process(__name__, *args) as pusher:
                pusher.wait_exit(seconds + 30)

        two_hops = _watch(_relay_address(two), pushing)
    skip = int(rate * warmup)
    return one_hop[skip:], two_hops[skip:]


def _relay_address(relay: ServiceProcess) -> str:
    """Where a relay started on port 0 serves: the port its ``ready PORT`` line names."""
    port = re.search(r"^ready (\d+)$", relay.stdout, re.MULTILINE)
    if port is None:
        raise RuntimeError(f"the relay named no port\n{relay.output()}")
    return f"127.0.0.1:{port.group(1)}"


def _watch(target: str, meanwhile: Callable[[], None]) -> list[float]:
    """The latencies seen on one watch while ``meanwhile`` (blocking) runs in a thread."""
    latencies: list[float] = []

    async def run() -> None:
        ready = asyncio.Event()
        watching = asyncio.create_task(watch_latencies(target, ready, latencies))
        async with asyncio.timeout(30):
            await ready.wait()
        await asyncio.get_running_loop().run_in_executor(None, meanwhile)
        await asyncio.sleep(0.2)  # the last messages in flight
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(run())
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    serving = sub.add_parser("relay")
    serving.add_argument("--port", type=int, default=0)
    serving.add_argument("--redis", default=None, help="one PING per message before relaying it")
    serving.add_argument("--emit", type=float, default=0.0, help="messages/s the relay sends itself (one hop)")
    pushing = sub.add_parser("push")
    pushing.add_argument("--target", required=True)
    pushing.add_argument("--rate", type=float, required=True)
    pushing.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        if args.role == "relay":
            runner.run(relay(args.port, args.redis, args.emit))
        else:
            runner.run(push(args.target, args.rate, args.count))


if __name__ == "__main__":
    main()
