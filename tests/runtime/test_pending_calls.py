"""Calls that wait in gRPC core for a busy server end by their own deadline or are served, never
cancelled by core after its default 30 s in the pending queue (a bare CANCELLED the client
cannot tell from a lost call; seen in the 2,000-EnqueueJob burst on a starved machine).

Core's limit is a server option: a short one shows core cancelling at it, and the option every
server is built with is read, rather than blocking a server for more than 30 s."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import grpc.aio
import pytest

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import ANY_LOOPBACK_PORT
from runtime.auth import Scope
from runtime.grpc_server import PENDING_CALL_MAX_SECONDS, GrpcServer, GrpcService
from runtime.grpc_types import MethodHandler

SERVICE = "test.runtime.v1.Busy"
HOLD, ECHO = f"/{SERVICE}/Hold", f"/{SERVICE}/Echo"
CALLS_WAITING = 5


@contextmanager
def busy_server(
    hold_seconds: float, echoed: list[bytes] | None = None, **server_options: int
) -> Iterator[tuple[str, threading.Event]]:
    """A GrpcServer on its own thread and event loop whose Hold method blocks that loop for
    ``hold_seconds`` (CPU starvation stand-in: the loop takes no new call meanwhile). Yields the
    address and an event set once Hold is blocking; each request Echo's handler ran for is
    appended to ``echoed``."""
    holding = threading.Event()
    ran = echoed if echoed is not None else []

    async def hold(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        holding.set()
        time.sleep(hold_seconds)  # noqa: ASYNC251 - blocking the loop is the point
        return request

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        ran.append(request)
        return request

    def register(server: grpc.aio.Server) -> None:
        handlers: dict[str, MethodHandler] = {
            "Hold": grpc.unary_unary_rpc_method_handler(hold),
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))

    bound: list[str] = []
    started = threading.Event()
    loop_box: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        stop = asyncio.Event()
        server = GrpcServer(
            GrpcService(
                name="busy",
                address=ANY_LOOPBACK_PORT,
                register=register,
                service_names=[SERVICE],
                scopes={HOLD: Scope.READ, ECHO: Scope.READ},
            ),
            authenticator=authenticator_for_tests(),
            grace_seconds=0.1,
            **server_options,  # type: ignore[arg-type]
        )
        bound.append(f"127.0.0.1:{await server.start()}")
        loop_box.append((asyncio.get_running_loop(), stop))
        started.set()
        await stop.wait()
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30), "server did not start"
    try:
        yield bound[0], holding
    finally:
        loop, stop = loop_box[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


async def codes_of_calls_made_while_the_server_is_blocked(
    address: str, holding: threading.Event, deadline_s: float = 120
) -> list[str]:
    async with aio_channel(address) as channel:
        hold: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(HOLD)
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(ECHO)
        held = asyncio.ensure_future(hold(b"hold", timeout=120))
        assert await asyncio.to_thread(holding.wait, 30)

        async def one() -> str:
            try:
                await echo(b"echo", timeout=deadline_s)
                return "OK"
            except grpc.aio.AioRpcError as error:
                return error.code().name

        codes = await asyncio.gather(*(one() for _ in range(CALLS_WAITING)))
        await held
    return sorted(codes)


@pytest.mark.timeout(60)
async def test_grpc_core_cancels_calls_that_waited_longer_than_the_servers_pending_limit() -> None:
    # The mechanism, with the limit shortened to 1 s: calls queued in core while the loop is
    # blocked for 2.5 s come back CANCELLED, and no handler (hence no log line) ever saw them.
    with busy_server(2.5, pending_call_max_seconds=1) as (address, holding):
        codes = await codes_of_calls_made_while_the_server_is_blocked(address, holding)
    assert codes.count("CANCELLED") >= CALLS_WAITING - 1
    assert set(codes) <= {"OK", "CANCELLED"}


@pytest.mark.timeout(30)
async def test_a_server_holds_waiting_calls_in_core_longer_than_any_client_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The limit gRPC core is given by a server built with the defaults (as serve() builds it):
    # PENDING_CALL_MAX_SECONDS, far past core's own 30 s and any deadline our clients set. The
    # test above shows core obeys that option; this one, that every server sets it to that.
    applied: list[dict[str, object]] = []
    real_server = grpc.aio.server

    def recording_server(*args: Any, **kwargs: Any) -> grpc.aio.Server:
        applied.append(dict(kwargs.get("options") or ()))
        return real_server(*args, **kwargs)

    monkeypatch.setattr(grpc.aio, "server", recording_server)
    service = GrpcService(name="busy", address="127.0.0.1:0", register=lambda server: None, service_names=[SERVICE])
    GrpcServer(service, authenticator=authenticator_for_tests())
    assert [options["grpc.server_max_unrequested_time_in_server"] for options in applied] == [PENDING_CALL_MAX_SECONDS]
    assert PENDING_CALL_MAX_SECONDS > 120


@pytest.mark.timeout(60)
async def test_a_call_whose_deadline_passes_while_it_waits_is_deadline_exceeded_and_never_run() -> None:
    # What a starved server's caller sees instead of CANCELLED: its own deadline, and nothing
    # behind it happened (an EnqueueJob that waited out its deadline enqueued no job).
    echoed: list[bytes] = []
    with busy_server(3.0, echoed) as (address, holding):
        codes = await codes_of_calls_made_while_the_server_is_blocked(address, holding, deadline_s=1.0)
        await asyncio.sleep(0.5)  # the loop is free again: a call it still held would run now
    assert codes == ["DEADLINE_EXCEEDED"] * CALLS_WAITING
    assert echoed == []
