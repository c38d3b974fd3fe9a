"""AMI over TLS: ami_ingest's settings build a verifying client context; the client logs in to a
TLS AMI server whose certificate the configured CA signed, and refuses one it did not."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from pydantic import SecretStr

from devsupport.waiting import wait_until
from services.ami_ingest.settings import AmiIngestSettings
from services.ami_ingest.simulator.callcenter import CallCenter
from services.ami_ingest.simulator.protocol import Credentials
from services.ami_ingest.simulator.server import SimulatorServer
from tests.auth.certs import CertificateAuthority

from ._client_support import client_config, running_client

CREDS = Credentials("tls-board", "tls-secret")


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_tls(ca: Path) -> ssl.SSLContext | None:
    settings = AmiIngestSettings(
        ami_username=CREDS.username, ami_secret=SecretStr(CREDS.secret), ami_tls=True, ami_tls_ca=ca
    )
    return settings.tls_context()


def test_tls_is_off_unless_asked_for() -> None:
    settings = AmiIngestSettings(ami_username="u", ami_secret=SecretStr("s"))
    assert settings.tls_context() is None


async def test_the_client_logs_in_and_reads_events_over_tls(tmp_path: Path) -> None:
    issued = CertificateAuthority(tmp_path).issue("pbx")
    sim = SimulatorServer(CallCenter(seed=2, calls_per_minute=120), credentials=CREDS, run_clock=False)
    sim.tls = server_context(issued.cert, issued.key)
    async with sim:
        config = client_config(
            sim.port, username=CREDS.username, secret=SecretStr(CREDS.secret), tls=client_tls(issued.ca)
        )
        async with running_client(config) as (client, events):
            async with asyncio.timeout(10):
                await client.wait_connected()
            # About 10,000 events in four bursts: plenty to read, few enough that a loaded machine
            # does not starve this loop into missing the client's pings (ten times as many did).
            for _ in range(4):
                sim.advance(250)
                await asyncio.sleep(0)
            await events.wait_for(lambda evs: len(evs) > 0, limit=10)


async def test_a_server_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = CertificateAuthority(tmp_path / "ours", name="our-ca").issue("pbx")
    theirs = CertificateAuthority(tmp_path / "theirs", name="their-ca").issue("pbx")
    sim = SimulatorServer(CallCenter(seed=2), credentials=CREDS, run_clock=False)
    sim.tls = server_context(theirs.cert, theirs.key)
    async with sim:
        config = client_config(
            sim.port, username=CREDS.username, secret=SecretStr(CREDS.secret), tls=client_tls(ours.ca)
        )
        async with running_client(config) as (client, _):
            error = await wait_until(lambda: client.last_error, within=10, what="the TLS handshake to fail")
            assert isinstance(error, ssl.SSLCertVerificationError)
            assert client.stats["logins"] == 0
