"""A local SMTP server (aiosmtpd) that keeps every message it accepts.

Optionally with STARTTLS (a self-signed certificate for 127.0.0.1/localhost, generated on start;
clients trust it through ``SMTP_TLS_CA_FILE``) and AUTH PLAIN/LOGIN with one username and
password (only after STARTTLS when TLS is on). Messages are kept in memory and, with
``maildir``, written there as ``.eml`` files (``make run`` writes them under ``DATA_DIR/mail``).
``rejected`` addresses get 550, ``deferred`` ones 451.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost, written to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "smtp-sink.crt", directory / "smtp-sink.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float
    peer: str = ""
    """The client's address and port: one per SMTP connection, so reuse shows."""

    @property
    def message(self) -> Any:
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class SinkHandler:
    maildir: Path | None = None
    rejected: set[str] = field(default_factory=set)
    deferred: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    logins: int = 0
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.rejected:
            return f"550 5.1.1 <{address}>: no such user"
        if address.lower() in self.deferred:
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        peer = ":".join(str(part) for part in session.peer) if session.peer else ""
        item = Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, time.time(), peer)
        with self.arrived:
            self.received.append(item)
            self.arrived.notify_all()
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
            (self.maildir / f"{int(item.at * 1000)}-{len(self.received)}.eml").write_bytes(content)
        return "250 Message accepted for delivery"


class PasswordCheck:
    def __init__(self, username: str, password: str, handler: SinkHandler) -> None:
        self.username, self.password, self.handler = username.encode(), password.encode(), handler

    def __call__(self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (self.username, self.password)
        if ok:
            self.handler.logins += 1
        return AuthResult(success=ok, handled=False)


class SmtpSink:
    """The sink on a loopback port (aiosmtpd's Controller runs it on a thread of its own)."""

    def __init__(
        self,
        *,
        port: int = 0,
        maildir: Path | None = None,
        tls_dir: Path | None = None,
        username: str = "",
        password: str = "",
    ) -> None:
        self.handler = SinkHandler(maildir=maildir)
        self.cert_path: Path | None = None
        kwargs: dict[str, Any] = {}
        if tls_dir is not None:
            self.cert_path, key_path = self_signed_certificate(tls_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert_path, key_path)
            kwargs.update(tls_context=context, require_starttls=True)
        if username:
            kwargs.update(
                authenticator=PasswordCheck(username, password, self.handler),
                auth_required=True,
                auth_require_tls=tls_dir is not None,
            )
        self._kwargs = kwargs
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port or _free_port(), **kwargs)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Drop every connection and serve again on the same port, as a restarted server does."""
        port = self.port
        self.controller.stop()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port, **self._kwargs)
        self.controller.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until ``count`` messages arrived (call from a thread in async code)."""
        with self.handler.arrived:
            self.handler.arrived.wait_for(lambda: len(self.handler.received) >= count, timeout)
        return list(self.handler.received)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description="local SMTP sink")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, default=Path(".data/mail"))
    args = parser.parse_args()
    sink = SmtpSink(port=args.port, maildir=args.maildir).start()
    print(f"smtp sink on 127.0.0.1:{sink.port}, writing {args.maildir}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sink.stop()


if __name__ == "__main__":
    main()
