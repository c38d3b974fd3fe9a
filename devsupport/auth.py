"""The credential every test (and bench/, scripts/) uses: one bootstrap token, admin scope.

Processes started through :func:`devsupport.procs.child_env` get it as
``AUTH_BOOTSTRAP_TOKEN`` (:data:`AUTH_ENV`); in-process servers use :func:`authenticator_for_tests`,
in-process settings take ``**AUTH_SETTINGS``; clients send it with :data:`AUTH_HEADERS` (HTTP),
:data:`AUTH_METADATA` (one gRPC call) or a channel from :func:`aio_channel` / :func:`sync_channel`.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
from pydantic import SecretStr

from runtime.auth import Authenticator, bearer_channel, bearer_interceptors, bearer_metadata

__all__ = [
    "AUTH_ENV",
    "AUTH_HEADERS",
    "AUTH_METADATA",
    "AUTH_SETTINGS",
    "BOOTSTRAP_TOKEN",
    "aio_channel",
    "authenticator_for_tests",
    "sync_channel",
]

BOOTSTRAP_TOKEN = "switchboard-test-bootstrap-token"
AUTH_ENV = {"AUTH_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN}
AUTH_SETTINGS: dict[str, Any] = {"auth_bootstrap_token": SecretStr(BOOTSTRAP_TOKEN)}
AUTH_HEADERS = {"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"}
AUTH_METADATA = bearer_metadata(BOOTSTRAP_TOKEN)


def authenticator_for_tests(**kwargs: Any) -> Authenticator:
    """What an in-process GrpcServer verifies callers with: the bootstrap token (and ``kwargs``)."""
    return Authenticator(bootstrap_token=BOOTSTRAP_TOKEN, **kwargs)


def aio_channel(address: str, **kwargs: Any) -> grpc.aio.Channel:
    """A grpc.aio channel sending the bootstrap token on every call."""
    return grpc.aio.insecure_channel(address, interceptors=bearer_interceptors(BOOTSTRAP_TOKEN), **kwargs)


def sync_channel(address: str, **kwargs: Any) -> grpc.Channel:
    """A blocking channel sending the bootstrap token on every call."""
    return bearer_channel(address, BOOTSTRAP_TOKEN, **kwargs)
