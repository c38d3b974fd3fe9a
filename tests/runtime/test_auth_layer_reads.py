"""The authentication layer around methods that are not audited (reads): checked before the
servicer runs, the caller known to it, refusals never reaching it — unary and streaming alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import grpc
import grpc.aio
import pytest

from devsupport.auth import AUTH_METADATA, authenticator_for_tests
from runtime.auth import bearer_metadata
from runtime.auth.grpc_server import AuthInterceptor, caller
from runtime.auth.scopes import Scope
from runtime.grpc_layers import LayeredServer
from runtime.grpc_types import MethodHandler

SERVICE = "test.reads.v1.Board"
READ, READ_SYNC, READ_STREAM, UPLOAD, UNDECLARED = (
    f"/{SERVICE}/{name}" for name in ("Read", "ReadSync", "ReadStream", "Upload", "Undeclared")
)
served: list[str] = []


def _who() -> bytes:
    principal = caller()
    served.append(principal.name if principal else "nobody")
    return served[-1].encode()


async def read(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _who()


def read_sync(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _who()  # a servicer need not be a coroutine


async def read_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield _who()


async def upload(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    return b"".join([chunk async for chunk in requests]) + b" from " + _who()


def unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(method)


def uploads(channel: grpc.aio.Channel) -> grpc.aio.StreamUnaryMultiCallable[bytes, bytes]:
    return channel.stream_unary(UPLOAD)


@pytest.fixture
async def board() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    auth = AuthInterceptor(authenticator_for_tests(), dict.fromkeys((READ, READ_SYNC, READ_STREAM, UPLOAD), Scope.READ))
    handlers: dict[str, MethodHandler] = {
        "Read": grpc.unary_unary_rpc_method_handler(read),
        "ReadSync": grpc.unary_unary_rpc_method_handler(read_sync),
        "ReadStream": grpc.unary_stream_rpc_method_handler(read_stream),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Undeclared": grpc.unary_unary_rpc_method_handler(read),
    }
    registrar = cast(grpc.aio.Server, LayeredServer(server, [auth]))
    registrar.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        served.clear()
        yield channel
    await server.stop(0)


async def test_a_read_runs_with_its_caller_known_once_the_credential_is_checked(board: grpc.aio.Channel) -> None:
    assert await unary(board, READ)(b"", metadata=AUTH_METADATA, timeout=5) == b"bootstrap"
    assert await unary(board, READ_SYNC)(b"", metadata=AUTH_METADATA, timeout=5) == b"bootstrap"
    streams: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = board.unary_stream(READ_STREAM)
    stream = streams(b"", metadata=AUTH_METADATA, timeout=5)
    assert [reply async for reply in stream] == [b"bootstrap"]
    assert await uploads(board)(iter([b"a", b"b"]), metadata=AUTH_METADATA, timeout=5) == b"ab from bootstrap"
    assert served == ["bootstrap"] * 4


@pytest.mark.parametrize(
    ("method", "metadata", "code"),
    [
        (READ, (), grpc.StatusCode.UNAUTHENTICATED),
        (READ, bearer_metadata("not-a-known-token"), grpc.StatusCode.UNAUTHENTICATED),
        (UNDECLARED, AUTH_METADATA, grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_a_refused_read_never_reaches_the_servicer(
    board: grpc.aio.Channel, method: str, metadata: tuple[tuple[str, str], ...], code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await unary(board, method)(b"", metadata=metadata, timeout=5)
    assert refused.value.code() is code
    assert served == []


async def test_a_refused_client_stream_never_reaches_the_servicer(board: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await uploads(board)(iter([b"a"]), metadata=bearer_metadata("nope"), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert served == []
