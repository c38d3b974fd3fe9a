"""gRPC over TLS with client certificates (mutual TLS) between Switchboard services.

``GRPC_TLS_CERT`` / ``GRPC_TLS_KEY`` are this process's certificate chain and key (PEM),
``GRPC_TLS_CA`` the CA that signed every service's certificate. With all three set, servers
listen with TLS and require a client certificate signed by that CA, and every internal client
(:func:`runtime.auth.grpc_client.internal_channel`) presents its own; with none set, gRPC is
plaintext (local runs, tests). Clients check the server's name against the address they dial,
so each certificate carries its service's DNS name (``status``, ``status.<ns>.svc``) as a SAN.
"""

from __future__ import annotations

import grpc

from runtime.config import CommonSettings

__all__ = ["client_credentials", "server_credentials", "tls_enabled"]


def tls_enabled(settings: CommonSettings) -> bool:
    return settings.grpc_tls_cert is not None


def server_credentials(settings: CommonSettings) -> grpc.ServerCredentials | None:
    if settings.grpc_tls_cert is None or settings.grpc_tls_key is None or settings.grpc_tls_ca is None:
        return None
    return grpc.ssl_server_credentials(
        [(settings.grpc_tls_key.read_bytes(), settings.grpc_tls_cert.read_bytes())],
        root_certificates=settings.grpc_tls_ca.read_bytes(),
        require_client_auth=True,
    )


def client_credentials(settings: CommonSettings) -> grpc.ChannelCredentials | None:
    if settings.grpc_tls_cert is None or settings.grpc_tls_key is None or settings.grpc_tls_ca is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=settings.grpc_tls_ca.read_bytes(),
        private_key=settings.grpc_tls_key.read_bytes(),
        certificate_chain=settings.grpc_tls_cert.read_bytes(),
    )
