"""gRPC calls that change state, made with a person's or a script's credential, are in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from devsupport.ports import ANY_LOOPBACK_PORT
from runtime.auth import bearer_metadata
from runtime.auth.keys import AuditEntry
from runtime.auth.scopes import Scope
from runtime.errors import InvalidArgument
from runtime.grpc_server import GrpcServer, GrpcService
from runtime.grpc_types import MethodHandler
from tests.auth.harness import INTERNAL_TOKEN, Keys

SERVICE = "test.auth.v1.Vault"
OPEN, PEEK, BREAK = (f"/{SERVICE}/{name}" for name in ("Open", "Peek", "Break"))


async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b"done"


async def refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise InvalidArgument("door", "is painted on")


class Vault:
    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.address = ""  # once started
        handlers: dict[str, MethodHandler] = {
            "Open": grpc.unary_unary_rpc_method_handler(answer),
            "Peek": grpc.unary_unary_rpc_method_handler(answer),
            "Break": grpc.unary_unary_rpc_method_handler(refuse),
        }
        self.authenticator = keys.authenticator()
        self.stopped = False
        self.server = GrpcServer(
            GrpcService(
                name="vault",
                address=ANY_LOOPBACK_PORT,
                register=lambda s: s.add_generic_rpc_handlers(
                    (grpc.method_handlers_generic_handler(SERVICE, handlers),)
                ),
                service_names=[SERVICE],
                scopes={OPEN: Scope.ADMIN, PEEK: Scope.READ, BREAK: Scope.OPERATE},
            ),
            authenticator=self.authenticator,
            grace_seconds=0.1,
        )

    async def call(self, method: str, token: str | None) -> grpc.StatusCode:
        async with grpc.aio.insecure_channel(self.address) as channel:
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
            try:
                await call(b"", metadata=bearer_metadata(token) if token else None, timeout=10)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.server.stop()
            await self.authenticator.close()

    async def entries_after_stop(self) -> list[AuditEntry]:
        """The audit log once the server stopped (the stop waits for the pending audit writes)."""
        await self.stop()
        return list(reversed(await self.keys.store.audit_entries()))


@pytest.fixture
async def vault(keys: Keys) -> AsyncIterator[Vault]:
    made = Vault(keys)
    made.address = f"127.0.0.1:{await made.server.start()}"
    try:
        yield made
    finally:
        await made.stop()


async def test_an_admin_call_with_an_api_key_is_written_with_who_what_and_outcome(vault: Vault) -> None:
    assert await vault.call(OPEN, vault.keys.admin) is grpc.StatusCode.OK
    (entry,) = await vault.entries_after_stop()
    assert entry.actor.startswith("key:")
    assert "test-admin" in entry.actor
    assert entry.action == f"RPC {OPEN}"
    assert entry.outcome == "ok"
    assert entry.detail == "gRPC OK"


async def test_refused_and_failed_calls_are_written_with_their_status(vault: Vault) -> None:
    assert await vault.call(OPEN, vault.keys.read) is grpc.StatusCode.PERMISSION_DENIED
    assert await vault.call(OPEN, None) is grpc.StatusCode.UNAUTHENTICATED
    assert await vault.call(BREAK, vault.keys.operate) is grpc.StatusCode.INVALID_ARGUMENT
    refused_reader, anonymous, failed = await vault.entries_after_stop()
    assert (refused_reader.outcome, refused_reader.detail) == (
        "refused",
        f"gRPC PERMISSION_DENIED: {OPEN} needs scope admin",
    )
    assert "test-read" in refused_reader.actor
    assert (anonymous.actor, anonymous.outcome) == ("anonymous", "refused")
    assert anonymous.detail.startswith("gRPC UNAUTHENTICATED: missing credential")
    assert (failed.action, failed.outcome, failed.detail) == (f"RPC {BREAK}", "failed", "gRPC INVALID_ARGUMENT")


async def test_reads_and_the_services_own_calls_are_not_written(vault: Vault) -> None:
    assert await vault.call(PEEK, vault.keys.admin) is grpc.StatusCode.OK
    assert await vault.call(OPEN, INTERNAL_TOKEN) is grpc.StatusCode.OK
    assert await vault.call(BREAK, INTERNAL_TOKEN) is grpc.StatusCode.INVALID_ARGUMENT
    assert await vault.entries_after_stop() == []
