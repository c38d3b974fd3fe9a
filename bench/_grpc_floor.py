"""The floor of a Python gRPC answer: ``python -m bench._grpc_floor --port P --method M --answer FILE``.

A bare grpc.aio server on uvloop (the loop the services run on) that answers unary calls of
method ``M`` with the bytes of ``FILE``, handed over as they are: no handler layers (no span,
no metrics, no log line, no authentication), no servicer, no serializer. What a call to it
costs is what grpcio's asyncio server and client cost by themselves for an answer of that size,
so the status benchmark prints it beside GetSnapshot (which answers the same bytes) and the raw
Redis read: the part of GetSnapshot's time that no change to the service can take away.
Prints ``ready`` once it serves; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from runtime.event_loop import event_loop_factory


def _as_is(data: bytes) -> bytes:
    return data


async def serve(port: int, method: str, answer: bytes) -> None:
    async def handle(request: bytes, context: Any) -> bytes:
        return answer

    service, _, name = method.lstrip("/").rpartition("/")
    handlers = {name: grpc.unary_unary_rpc_method_handler(handle, _as_is, _as_is)}
    server = grpc.aio.server()
    # Registered as the services register theirs (runtime/grpc_server.py via their generated code).
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", required=True, help="/package.Service/Method")
    parser.add_argument("--answer", type=Path, required=True, help="file holding the answer's bytes")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(args.port, args.method, args.answer.read_bytes()))


if __name__ == "__main__":
    main()
