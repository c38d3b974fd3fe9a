"""What the auth tests share: real API keys in a migrated database, one per scope."""

from __future__ import annotations

from dataclasses import dataclass

from devsupport.auth import BOOTSTRAP_TOKEN
from runtime.auth import Authenticator
from runtime.auth.migrate import upgrade
from runtime.auth.scopes import Scope
from runtime.auth.store import AuthStore

INTERNAL_TOKEN = "switchboard-test-internal-token"


@dataclass
class Keys:
    """One API key per scope, created through the store like ``python -m runtime.auth keys create``."""

    database_url: str
    read: str
    operate: str
    admin: str
    store: AuthStore

    def authenticator(self) -> Authenticator:
        return Authenticator(
            bootstrap_token=BOOTSTRAP_TOKEN, internal_token=INTERNAL_TOKEN, store=AuthStore(self.database_url)
        )


async def make_keys(database_url: str) -> Keys:
    await upgrade(database_url)
    store = AuthStore(database_url)
    issued = {
        scope: (await store.create_key(f"test-{scope}", scope)).token
        for scope in (Scope.READ, Scope.OPERATE, Scope.ADMIN)
    }
    return Keys(database_url, issued[Scope.READ], issued[Scope.OPERATE], issued[Scope.ADMIN], store)
