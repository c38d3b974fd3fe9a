"""``python -m runtime.auth``: API keys and the auth tables, on ``AUTH_DATABASE_URL`` (else ``DATABASE_URL``).

::

    python -m runtime.auth keys create --name billing-export --scope read   # prints the key once
    python -m runtime.auth keys list [--json]
    python -m runtime.auth keys revoke 3f9c0a1b2c4d
    python -m runtime.auth audit [--limit 50]
    python -m runtime.auth migrate

Every command applies the migrations first, and every key change is written to the audit log
(actor ``cli:<os user>``) and announced on Redis (``REDIS_URL``) to every running process, which
drops its cached answers (:mod:`runtime.auth.revocation`): a revoked key is refused at once. Exit
status 1 with a message for an unknown key id.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time

from redis.exceptions import RedisError

from runtime.auth.migrate import upgrade
from runtime.auth.revocation import announce_key_change
from runtime.auth.scopes import Scope
from runtime.auth.store import ApiKey, AuditEntry, AuthStore
from runtime.config import CommonSettings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runtime.auth", description="Switchboard API keys and audit log")
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="create, list and revoke API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key and print it (the only time it is shown)")
    create.add_argument("--name", required=True, help="who or what uses the key, e.g. billing-export")
    create.add_argument("--scope", required=True, choices=[Scope.READ, Scope.OPERATE, Scope.ADMIN])
    listing = keys.add_parser("list", help="every key: id, name, scope, created, revoked")
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    revoke = keys.add_parser("revoke", help="revoke a key (every process refuses it at once, told over Redis)")
    revoke.add_argument("key_id")
    audit = commands.add_parser("audit", help="the latest audit log entries, newest first")
    audit.add_argument("--limit", type=int, default=50)
    commands.add_parser("migrate", help="create or upgrade the auth tables")
    return parser


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z" if ts else "-"


def _key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope.value,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


async def _announce(settings: CommonSettings, key_id: str) -> int | None:
    """Tell every running process that ``key_id`` changed (runtime.auth.revocation); None: could not."""
    try:
        return await announce_key_change(settings.redis_url, key_id)
    except (RedisError, OSError) as error:
        print(
            f"warning: could not announce the change on Redis ({type(error).__name__}): running processes "
            f"notice it within AUTH_KEY_CACHE_SECONDS ({settings.auth_key_cache_seconds:g} s)",
            file=sys.stderr,
        )
        return None


async def _run(args: argparse.Namespace, settings: CommonSettings) -> int:
    url = settings.auth_store_url
    await upgrade(url)
    if args.command == "migrate":
        print("auth tables are up to date")
        return 0
    store = AuthStore(url)
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.command == "audit":
            for entry in await store.audit_entries(limit=args.limit):
                print(
                    f"{_when(entry.at)}  {entry.actor:<32} {entry.action:<40} {entry.outcome:<8}",
                    entry.target,
                    entry.detail,
                )
            return 0
        if args.action == "create":
            issued = await store.create_key(args.name, Scope(args.scope))
            await store.record(
                AuditEntry(time.time(), actor, "key create", issued.key.id, "ok", f"{args.name} ({args.scope})")
            )
            await _announce(settings, issued.key.id)
            print(f"created key {issued.key.id} ({issued.key.name}, scope {issued.key.scope}); it is shown only now:")
            print(issued.token)
            return 0
        if args.action == "list":
            keys = await store.list_keys()
            if args.json:
                print(json.dumps([_key_json(k) for k in keys]))
                return 0
            print(f"{'id':<14}{'scope':<9}{'created':<22}{'revoked':<22}name")
            for key in keys:
                print(
                    f"{key.id:<14}{key.scope.value:<9}{_when(key.created_at):<22}{_when(key.revoked_at):<22}{key.name}"
                )
            return 0
        revoked = await store.revoke_key(args.key_id)
        outcome = "ok" if revoked is not None else "not found"
        await store.record(AuditEntry(time.time(), actor, "key revoke", args.key_id, outcome))
        if revoked is None:
            print(f"no key {args.key_id!r}", file=sys.stderr)
            return 1
        listening = await _announce(settings, revoked.id)
        print(f"revoked key {revoked.id} ({revoked.name})" + (f"; {listening} processes told" if listening else ""))
        return 0
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_run(args, load_settings(CommonSettings)))


if __name__ == "__main__":
    sys.exit(main())
