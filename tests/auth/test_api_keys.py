"""API keys: made, listed and revoked with ``python -m runtime.auth``, stored hashed, checked on
every call; refusals are logged without the credential."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import grpc.aio
import pytest
import sqlalchemy as sa
import structlog

from devsupport.ports import ANY_LOOPBACK_PORT, free_port
from devsupport.procs import REPO_ROOT, child_env
from runtime.auth import Authenticator, bearer_metadata
from runtime.auth.migrate import HEAD, upgrade
from runtime.auth.scopes import Scope
from runtime.auth.store import AuthStore, api_keys
from runtime.errors import Unauthenticated
from runtime.grpc_server import GrpcServer, GrpcService
from runtime.grpc_types import MethodHandler
from tests.auth.harness import Keys


def cli(database_url: str, *args: str, redis_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command; with no ``redis_url``, a Redis nobody listens on (the announcement fails)."""
    return subprocess.run(
        [sys.executable, "-m", "runtime.auth", *args],
        env=child_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url or f"redis://127.0.0.1:{free_port()}/0"}),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(400)  # six process starts; slow on a loaded machine
async def test_the_command_creates_lists_and_revokes_keys_stored_only_as_hashes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    created = cli(url, "keys", "create", "--name", "billing-export", "--scope", "read")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("sb_")

    listed = cli(url, "keys", "list", "--json")
    [key] = json.loads(listed.stdout)
    assert key["name"] == "billing-export"
    assert key["scope"] == "read"
    assert key["revoked_at"] is None
    assert token not in listed.stdout

    store = AuthStore(url)
    try:
        async with store.engine.connect() as connection:
            [row] = (await connection.execute(sa.select(api_keys))).all()
        assert token.split("_", 2)[2] not in str(tuple(row))  # only the digest of the secret is kept
        authenticator = Authenticator(store=store, cache_seconds=0)
        principal = await authenticator.authenticate(token)
        assert principal.scopes == {Scope.READ}
        assert principal.key_id == key["id"]

        revoked = cli(url, "keys", "revoke", key["id"])
        assert revoked.returncode == 0, revoked.stderr
        # Redis unreachable: revoked all the same, and told that caches keep the key a while.
        assert "could not announce the change on Redis" in revoked.stderr
        with pytest.raises(Unauthenticated):
            await authenticator.authenticate(token)
        audit = cli(url, "audit")
        assert "key create" in audit.stdout
        assert "key revoke" in audit.stdout
        assert cli(url, "keys", "revoke", "000000000000").returncode == 1
    finally:
        await store.close()


async def test_a_key_with_a_wrong_secret_or_an_unknown_shape_is_refused(keys: Keys) -> None:
    authenticator = keys.authenticator()
    try:
        key_id = keys.read.split("_")[1]
        for token in (f"sb_{key_id}_not-the-secret", "sb_zzzz", "Basic abc", keys.read + "x"):
            with pytest.raises(Unauthenticated):
                await authenticator.authenticate(token)
        with pytest.raises(Unauthenticated, match="missing credential"):
            await authenticator.authenticate(None)
    finally:
        await authenticator.close()


def test_the_head_revision_constant_matches_the_migrations() -> None:
    versions = Path(REPO_ROOT, "runtime/auth/migrations/versions").glob("*.py")
    revisions = {
        line.split('"')[1] for p in versions for line in p.read_text().splitlines() if line.startswith("revision")
    }
    assert HEAD in revisions


async def test_upgrading_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    await upgrade(url)
    await upgrade(url)  # at head: a no-op
    store = AuthStore(url)
    try:
        assert await store.list_keys() == []
    finally:
        await store.close()


SERVICE = "test.auth.v1.Vault"


async def open_vault(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b"opened"


async def test_grpc_refusals_are_logged_without_the_credential(keys: Keys) -> None:
    handlers: dict[str, MethodHandler] = {"Open": grpc.unary_unary_rpc_method_handler(open_vault)}
    authenticator = keys.authenticator()
    server = GrpcServer(
        GrpcService(
            name="vault",
            address=ANY_LOOPBACK_PORT,
            register=lambda s: s.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),)),
            service_names=[SERVICE],
            scopes={f"/{SERVICE}/Open": Scope.ADMIN},
        ),
        authenticator=authenticator,
        grace_seconds=0.1,
    )
    address = f"127.0.0.1:{await server.start()}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{SERVICE}/Open")
            with structlog.testing.capture_logs() as logs:
                with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                    await call(b"", timeout=5)
                with pytest.raises(grpc.aio.AioRpcError) as wrong_key:
                    await call(b"", metadata=bearer_metadata("sb_0123456789ab_guessed"), timeout=5)
                with pytest.raises(grpc.aio.AioRpcError) as reader:
                    await call(b"", metadata=bearer_metadata(keys.read), timeout=5)
                assert await call(b"", metadata=bearer_metadata(keys.admin), timeout=5) == b"opened"
    finally:
        await server.stop()
        await authenticator.close()
    assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert wrong_key.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert reader.value.code() is grpc.StatusCode.PERMISSION_DENIED
    refusals = [line for line in logs if line["event"] == "auth refused"]
    assert len(refusals) == 3
    assert refusals[2]["principal"].startswith("key:")
    assert "needs scope admin" in refusals[2]["reason"]
    logged = json.dumps(logs, default=str)
    assert "guessed" not in logged
    assert keys.read not in logged
    assert keys.read.split("_", 2)[2] not in logged
