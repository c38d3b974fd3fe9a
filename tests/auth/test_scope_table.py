"""Every HTTP route and every RPC declares a scope, and each is enforced as declared.

The routes come from the gateway app itself, the RPCs from every contract compiled into gen/
and the declarations the services make (tools/scope_table.py); docs/scopes.md is the table.
Each is then called anonymously, with a ``read``, an ``operate`` and an ``admin`` key.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from fastapi.routing import APIRoute

from devsupport.ports import ANY_LOOPBACK_PORT
from gateway.app import create_app
from runtime.auth import bearer_metadata
from runtime.auth.http import declared_scope
from runtime.auth.scopes import DECLARED, PUBLIC, Scope
from runtime.grpc_server import GrpcServer, GrpcService
from runtime.grpc_types import MethodHandler
from tests.auth.harness import INTERNAL_TOKEN, Keys
from tests.gateway.harness import Backends, LiveGateway, served
from tools import scope_table

ALLOWED = "allowed"
PATH_VALUES = {
    "queue": "workflow",
    "job_id": "j1",
    "name": "sales",
    "memberId": "PJSIP/1002",
    "media_id": "m1",
    "notification_id": "n1",
    "user_id": "op-1",
    "subscription_id": "s1",
}


def test_every_route_and_rpc_declares_a_scope_and_the_table_is_current() -> None:
    table = scope_table.build_table()
    undeclared = [line for line in table.splitlines() if "UNDECLARED" in line]
    assert not undeclared, "declare a scope (requires(...)/public()/method_scopes) for:\n" + "\n".join(undeclared)
    assert scope_table.TABLE.read_text() == table, "docs/scopes.md is stale: python -m tools.scope_table --write"


def _expected(scope: Scope | str, caller: str) -> str:
    if scope == PUBLIC:
        return ALLOWED
    if caller == "anonymous":
        return "unauthenticated"
    granted = {"read": {Scope.READ}, "operate": {Scope.READ, Scope.OPERATE}, "admin": set(Scope)}[caller]
    return ALLOWED if scope in granted else "denied"


def _http_outcome(status: int) -> str:
    return {401: "unauthenticated", 403: "denied"}.get(status, ALLOWED)


@pytest.fixture
async def gateway(backends: Backends, keys: Keys) -> AsyncIterator[LiveGateway]:
    settings = backends.settings(database_url=keys.database_url)
    async for live in served(create_app(settings)):
        yield live


@pytest.mark.timeout(120)
async def test_every_http_route_answers_each_caller_as_declared(gateway: LiveGateway, keys: Keys) -> None:
    app = gateway.app
    callers = {"anonymous": {}, "read": keys.read, "operate": keys.operate, "admin": keys.admin}
    checked = 0
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        for route in scope_table.http_routes(app):
            if not isinstance(route, APIRoute):
                continue
            scope = declared_scope(route)
            assert scope is not None, route.path
            path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES[m.group(1)], route.path)
            for method in route.methods or ():
                statuses: set[int] = set()
                for caller, token in callers.items():
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    body: Any = {} if method in {"POST", "DELETE"} and path.startswith("/api/") else None
                    async with client.stream(method, path, headers=headers, json=body) as response:
                        status = response.status_code
                    statuses.add(status)
                    if scope != PUBLIC:
                        expected = _expected(scope, caller)
                        outcome = _http_outcome(status)
                        assert outcome == expected, f"{method} {path} as {caller}: HTTP {status}, expected {expected}"
                    checked += 1
                if scope == PUBLIC:
                    # Open on purpose: no credential is asked for. The login form and the signed SMS
                    # callback refuse what they are sent (401/403) with or without one.
                    refusals = statuses & {401, 403}
                    assert not refusals or len(statuses) == 1, f"{method} {path} answers {statuses}"
    print(f"HTTP: {checked} calls checked")
    routes = [r for r in scope_table.http_routes(app) if isinstance(r, APIRoute)]
    assert checked == len(callers) * sum(len(r.methods or ()) for r in routes)


def _answering_every_method(service: str, methods: list[str]) -> Any:
    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b""

    async def client_stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        return b""

    async def server_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        for _ in ():
            yield b""

    async def bidi(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        for _ in ():
            yield b""

    from google.protobuf import descriptor_pool

    descriptor = descriptor_pool.Default().FindServiceByName(service)
    handlers: dict[str, MethodHandler] = {}
    for method in descriptor.methods:
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(bidi)
        elif method.client_streaming:
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(client_stream)
        elif method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(server_stream)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(unary)
    return grpc.method_handlers_generic_handler(service, handlers), {m.name: m for m in descriptor.methods}


def _register(generic: grpc.GenericRpcHandler, server: grpc.aio.Server) -> None:
    server.add_generic_rpc_handlers((generic,))


async def _call(channel: grpc.aio.Channel, method: str, kind: Any, metadata: Any) -> grpc.StatusCode:
    # A client-streaming call writes no request: every handler here (and a refusal) answers
    # without reading one, and grpc.aio reports a write that races the server's end of the call
    # as INTERNAL instead of the server's status (grpc/grpc#36066).
    try:
        if kind.client_streaming and kind.server_streaming:
            both: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(method)
            return await both(metadata=metadata, timeout=10).code()
        elif kind.client_streaming:
            uploads: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(method)
            return await uploads(metadata=metadata, timeout=10).code()
        elif kind.server_streaming:
            streams: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(method)
            async for _ in streams(b"", metadata=metadata, timeout=10):
                pass
        else:
            unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
            await unary(b"", metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


_OUTCOME = {
    grpc.StatusCode.OK: ALLOWED,
    grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
    grpc.StatusCode.PERMISSION_DENIED: "denied",
}


@pytest.mark.timeout(120)
async def test_every_rpc_answers_each_caller_as_declared(keys: Keys) -> None:
    scope_table.load_service_declarations()
    services = sorted({method.split("/")[1] for method in scope_table.contract_methods()})
    callers = {
        "anonymous": (),
        "read": bearer_metadata(keys.read),
        "operate": bearer_metadata(keys.operate),
        "admin": bearer_metadata(keys.admin),
    }
    checked = 0
    for service in services:
        generic, methods = _answering_every_method(service, [])
        scopes = {m: s for m, s in DECLARED.items() if m.startswith(f"/{service}/")}
        authenticator = keys.authenticator()
        server = GrpcServer(
            GrpcService(
                name=service,
                address=ANY_LOOPBACK_PORT,
                register=functools.partial(_register, generic),
                service_names=[service],
                scopes=scopes,
            ),
            authenticator=authenticator,
            grace_seconds=0.1,
        )
        address = f"127.0.0.1:{await server.start()}"
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                for name, kind in methods.items():
                    method = f"/{service}/{name}"
                    for caller, metadata in callers.items():
                        code = await _call(channel, method, kind, metadata)
                        expected = _expected(scopes[method], caller)
                        assert _OUTCOME.get(code) == expected, f"{method} as {caller}: {code.name}, expected {expected}"
                        checked += 1
                    internal = await _call(channel, method, kind, bearer_metadata(INTERNAL_TOKEN))
                    assert internal is grpc.StatusCode.OK, f"{method} as the internal identity: {internal.name}"
        finally:
            await server.stop()
            await authenticator.close()
    print(f"gRPC: {checked} calls checked across {len(services)} services")
    assert checked == 4 * len(scope_table.contract_methods())
