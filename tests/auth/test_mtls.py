"""gRPC over TLS with client certificates: servers require one from the CA, internal clients
present theirs, and a verified certificate is the internal identity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
import pytest

from devsupport.ports import ANY_LOOPBACK_PORT
from runtime.auth import bearer_metadata, internal_channel
from runtime.auth.scopes import Scope
from runtime.auth.tls import server_credentials
from runtime.config import CommonSettings
from runtime.grpc_server import GrpcServer, GrpcService
from runtime.grpc_types import MethodHandler
from tests.auth.certs import CertificateAuthority, Issued
from tests.auth.harness import Keys

SERVICE = "test.auth.v1.Vault"
SCOPES = {f"/{SERVICE}/Open": Scope.INTERNAL, f"/{SERVICE}/Peek": Scope.READ}


async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b"ok"


def register(server: grpc.aio.Server) -> None:
    handlers: dict[str, MethodHandler] = {name: grpc.unary_unary_rpc_method_handler(who) for name in ("Open", "Peek")}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def settings_for(issued: Issued) -> CommonSettings:
    return CommonSettings(
        grpc_tls_cert=issued.cert, grpc_tls_key=issued.key, grpc_tls_ca=issued.ca, auth_bootstrap_token=None
    )


@dataclass
class Vault:
    address: str
    ca: CertificateAuthority
    directory: Path


@pytest.fixture
async def vault(tmp_path: Path, keys: Keys) -> AsyncIterator[Vault]:
    ca = CertificateAuthority(tmp_path)
    server_settings = settings_for(ca.issue("vault"))
    authenticator = keys.authenticator()
    server = GrpcServer(
        GrpcService(name="vault", address=ANY_LOOPBACK_PORT, register=register, service_names=[SERVICE], scopes=SCOPES),
        authenticator=authenticator,
        credentials=server_credentials(server_settings),
        grace_seconds=0.1,
    )
    address = f"127.0.0.1:{await server.start()}"
    try:
        yield Vault(address, ca, tmp_path)
    finally:
        await server.stop()
        await authenticator.close()


async def call(channel: grpc.aio.Channel, method: str, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    try:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{SERVICE}/{method}")
        await call(b"", metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_client_with_a_certificate_from_the_ca_is_the_internal_identity(vault: Vault) -> None:
    async with internal_channel(vault.address, settings_for(vault.ca.issue("gateway"))) as channel:
        assert await call(channel, "Open") is grpc.StatusCode.OK


async def test_a_bearer_token_on_top_of_the_certificate_decides_the_scope(vault: Vault, keys: Keys) -> None:
    async with internal_channel(vault.address, settings_for(vault.ca.issue("script"))) as channel:
        assert await call(channel, "Peek", bearer_metadata(keys.read)) is grpc.StatusCode.OK
        assert await call(channel, "Open", bearer_metadata(keys.read)) is grpc.StatusCode.PERMISSION_DENIED


async def test_plaintext_and_certificate_less_clients_never_get_a_connection(vault: Vault, keys: Keys) -> None:
    async with grpc.aio.insecure_channel(vault.address) as plaintext:
        assert await call(plaintext, "Peek", bearer_metadata(keys.admin)) is grpc.StatusCode.UNAVAILABLE
    server_only = grpc.ssl_channel_credentials(root_certificates=vault.ca.ca_path.read_bytes())
    async with grpc.aio.secure_channel(vault.address, server_only) as no_client_cert:
        assert await call(no_client_cert, "Peek", bearer_metadata(keys.admin)) is grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_is_refused(vault: Vault, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    stranger = CertificateAuthority(other_dir, "stranger-ca").issue("intruder")
    # The intruder trusts our CA (to reach the server) but its own certificate is signed by another.
    settings = CommonSettings(
        grpc_tls_cert=stranger.cert, grpc_tls_key=stranger.key, grpc_tls_ca=vault.ca.ca_path, auth_bootstrap_token=None
    )
    async with internal_channel(vault.address, settings) as channel:
        assert await call(channel, "Open") is grpc.StatusCode.UNAVAILABLE


def test_tls_settings_are_all_three_or_none(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set all three or none"):
        CommonSettings(grpc_tls_cert=tmp_path / "a.crt")
