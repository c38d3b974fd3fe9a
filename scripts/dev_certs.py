"""``make dev-certs``: the certificates the ``dev-mtls`` overlay mounts (mTLS in a dev cluster).

Writes a fresh certificate authority, ``switchboard-dev-ca.crt``, and for every process that
speaks gRPC (the five services and the gateway) ``<name>.crt`` and ``<name>.key``, signed by it,
into ``k8s/overlays/dev-mtls/certs/`` (not committed: each developer gets their own CA). Each
certificate names its Service as the cluster resolves it (``status``, ``status.switchboard``,
``status.switchboard.svc``, ``status.switchboard.svc.cluster.local``), which is what clients check
the server against; the gateway's is a client certificate only, but carries its names alike.

    make dev-certs && kubectl apply -k k8s/overlays/dev-mtls

In production the same Secrets come from the cluster's issuer (cert-manager), not from here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devsupport.certs import CertificateAuthority
from devsupport.procs import REPO_ROOT

PROCESSES = ("status", "media", "notify", "ami-ingest", "queue-admin", "gateway")
"""Every Deployment the mtls component (k8s/components/mtls) gives a ``<name>-tls`` Secret."""
CA_NAME = "switchboard-dev-ca"
DEFAULT_DIRECTORY = REPO_ROOT / "k8s" / "overlays" / "dev-mtls" / "certs"
NAMESPACE = "switchboard"
VALID_DAYS = 365


def service_names(name: str, namespace: str) -> tuple[str, ...]:
    """The names a client in the cluster may dial ``name``'s Service by."""
    return (name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local")


def write(directory: Path, namespace: str = NAMESPACE) -> list[Path]:
    """The CA and every process's certificate and key in ``directory``; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(directory, CA_NAME, valid_days=VALID_DAYS)
    written = [ca.ca_path]
    for name in PROCESSES:
        issued = ca.issue(name, hosts=service_names(name, namespace))
        issued.key.chmod(0o600)
        written += [issued.cert, issued.key]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_DIRECTORY, help="where to write the PEM files")
    parser.add_argument("--namespace", default=NAMESPACE, help="the namespace the overlay deploys to")
    args = parser.parse_args(argv)
    for path in write(args.out, args.namespace):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
