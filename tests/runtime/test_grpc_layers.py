"""runtime/grpc_layers.py: handler layers applied once per method at registration nest exactly
as the same layers do as grpc.aio interceptors (a real server on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
import grpc.aio
import pytest

from runtime.grpc_layers import HandlerLayer, LayeredServer
from runtime.grpc_types import MethodHandler

GENERIC = "test.layers.v1.Generic"
REGISTERED = "test.layers.v1.Registered"


class Recording(HandlerLayer):
    """Records its name on every call, and every time it is asked to wrap a method."""

    def __init__(self, name: str, calls: list[str], wraps: list[str]) -> None:
        super().__init__()
        self.name, self.calls, self.wraps = name, calls, wraps

    def wrap(self, method: str, handler: MethodHandler) -> MethodHandler:
        self.wraps.append(f"{self.name} {method}")
        inner = cast(Callable[[Any, Any], Awaitable[Any]], handler.unary_unary)
        calls, name = self.calls, self.name

        async def recorded(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            calls.append(name)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(recorded)


def unary(channel: grpc.aio.Channel, service: str, method: str = "Call") -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
    return channel.unary_unary(f"/{service}/{method}")


@pytest.fixture(params=["layered", "interceptors"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[grpc.aio.Channel, list[str], list[str]]]:
    calls: list[str] = []
    wraps: list[str] = []
    layers = [Recording(name, calls, wraps) for name in ("outer", "middle", "inner")]

    async def answer(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        calls.append("servicer")
        return b"answer:" + request

    handlers: dict[str, MethodHandler] = {"Call": grpc.unary_unary_rpc_method_handler(answer)}
    real = grpc.aio.server(interceptors=layers if request.param == "interceptors" else None)
    registrar = real if request.param == "interceptors" else cast(grpc.aio.Server, LayeredServer(real, layers))
    registrar.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(GENERIC, handlers),))
    registrar.add_registered_method_handlers(REGISTERED, handlers)
    port = real.add_insecure_port("127.0.0.1:0")
    await real.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, calls, wraps
    await real.stop(0)


@pytest.mark.parametrize("service", [GENERIC, REGISTERED])
async def test_a_call_runs_the_layers_first_outermost_then_the_servicer(
    server: tuple[grpc.aio.Channel, list[str], list[str]], service: str
) -> None:
    channel, calls, _ = server
    answer = await unary(channel, service)(b"x", timeout=5)
    assert answer == b"answer:x"
    assert calls == ["outer", "middle", "inner", "servicer"]


@pytest.mark.parametrize("service", [GENERIC, REGISTERED])
async def test_each_layer_wraps_a_method_once_however_many_calls_it_gets(
    server: tuple[grpc.aio.Channel, list[str], list[str]], service: str
) -> None:
    channel, _, wraps = server
    for _ in range(3):
        await unary(channel, service)(b"x", timeout=5)
    method = f"/{service}/Call"
    assert [entry for entry in wraps if entry.endswith(method)] == [
        f"inner {method}",
        f"middle {method}",
        f"outer {method}",
    ]


async def test_an_unknown_method_is_unimplemented_and_reaches_no_layer(
    server: tuple[grpc.aio.Channel, list[str], list[str]],
) -> None:
    channel, calls, _ = server
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await unary(channel, GENERIC, "Missing")(b"x", timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert calls == []


async def test_a_layer_that_does_not_say_how_it_wraps_is_refused_at_registration() -> None:
    async def answer(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return request

    registrar = LayeredServer(grpc.aio.server(), [HandlerLayer()])
    with pytest.raises(NotImplementedError):
        registrar.add_registered_method_handlers(REGISTERED, {"Call": grpc.unary_unary_rpc_method_handler(answer)})
