"""Authentication and authorization for every Switchboard process.

- :mod:`runtime.auth.scopes`: ``read`` ⊂ ``operate`` ⊂ ``admin`` (+ ``internal``), the
  :class:`Principal` a credential stands for, :func:`method_scopes` for gRPC declarations.
- :mod:`runtime.auth.authenticator`: bearer token → principal (internal token, bootstrap token,
  API keys from the database, OIDC JWTs), cached.
- :mod:`runtime.auth.grpc_server`: the server interceptor (``runtime.grpc_server`` installs it).
- :mod:`runtime.auth.grpc_client`: channels that present the internal identity.
- :mod:`runtime.auth.http`: the FastAPI dependencies the gateway declares per route.
- :mod:`runtime.auth.store`: API keys (stored hashed) and the audit log; ``python -m runtime.auth``
  creates, lists and revokes keys; :mod:`runtime.auth.migrate` owns their tables.
- :mod:`runtime.auth.tls`: mTLS credentials from ``GRPC_TLS_CERT`` / ``GRPC_TLS_KEY`` / ``GRPC_TLS_CA``.
"""

from runtime.auth.authenticator import Authenticator
from runtime.auth.grpc_client import (
    bearer_channel,
    bearer_interceptors,
    bearer_metadata,
    internal_channel,
    internal_unary_channel,
)
from runtime.auth.scopes import PUBLIC, Principal, Scope, method_scopes

__all__ = [
    "PUBLIC",
    "Authenticator",
    "Principal",
    "Scope",
    "bearer_channel",
    "bearer_interceptors",
    "bearer_metadata",
    "internal_channel",
    "internal_unary_channel",
    "method_scopes",
]
