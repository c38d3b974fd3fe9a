"""The floor of a Python gRPC answer: ``python -m bench._grpc_floor --port P --method M --answer FILE``.

A bare grpc.aio server on uvloop (the loop the services run on) that answers unary calls of
method ``M`` with the bytes of ``FILE``, handed over as they are: no handler layers (no span,
no metrics, no log line, no authentication), no servicer, no serializer. What a call to it
costs is what grpcio's asyncio server and client cost by themselves for an answer of that size,
so the status benchmark prints it beside GetSnapshot (which answers the same bytes) and the raw
Redis read: the part of GetSnapshot's time that no change to the service can take away.

With ``--layers`` the same handler is served the way every Switchboard service serves its
methods instead: :class:`runtime.grpc_server.GrpcServer` with its handler layers (call cap,
span, logs and metrics, authentication of the bearer credential), health and reflection, set
up from the environment's settings like a service process. Between the two floors lies what
our server stack costs per call; between this one and GetSnapshot, what the status service
itself does.
Prints ``ready`` once it serves; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from runtime.auth import Authenticator, Scope
from runtime.config import CommonSettings
from runtime.event_loop import event_loop_factory
from runtime.grpc_server import GrpcServer, GrpcService
from runtime.process import init_process


def _as_is(data: bytes) -> bytes:
    return data


async def serve(port: int, method: str, answer: bytes, *, layers: bool = False) -> None:
    async def handle(request: bytes, context: Any) -> bytes:
        return answer

    service, _, name = method.lstrip("/").rpartition("/")
    handlers = {name: grpc.unary_unary_rpc_method_handler(handle, _as_is, _as_is)}

    def register(server: grpc.aio.Server) -> None:
        # Registered as the services register theirs (runtime/grpc_server.py via their generated code).
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)

    address = f"127.0.0.1:{port}"
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if layers:
        await _serve_layered(address, service, method, register, stop)
        return
    server = grpc.aio.server()
    register(server)
    server.add_insecure_port(address)
    await server.start()
    print("ready", flush=True)
    await stop.wait()
    await server.stop(0)


async def _serve_layered(
    address: str, service: str, method: str, register: Callable[[grpc.aio.Server], None], stop: asyncio.Event
) -> None:
    """The answer behind GrpcServer, set up as :func:`runtime.grpc_server.run_service` sets a
    service up (logs at WARNING and no /metrics port, as the benchmarks run the services)."""
    settings = CommonSettings(log_level="WARNING", metrics_port=-1)
    init_process("grpc-floor", settings, metrics=False)
    authenticator = Authenticator.from_settings(settings)
    server = GrpcServer(
        GrpcService(
            name="grpc-floor",
            address=address,
            register=register,
            service_names=[service],
            scopes={method: Scope.READ},
            debug_when_ok=frozenset({method}),  # as the status service's reads
        ),
        authenticator=authenticator,
        max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
    )
    await server.start()
    print("ready", flush=True)
    await stop.wait()
    await server.stop()
    await authenticator.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", required=True, help="/package.Service/Method")
    parser.add_argument("--answer", type=Path, required=True, help="file holding the answer's bytes")
    parser.add_argument("--layers", action="store_true", help="serve it behind the services' GrpcServer stack")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(args.port, args.method, args.answer.read_bytes(), layers=args.layers))


if __name__ == "__main__":
    main()
