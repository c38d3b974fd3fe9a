"""VAPID keys: loading the configured private key, its public key, and generating a pair.

``VAPID_PRIVATE_KEY`` may be PEM or the raw 32-byte key in base64url (what most tools print).
The public key is what browsers pass to ``PushManager.subscribe`` as ``applicationServerKey``:
the uncompressed P-256 point in base64url without padding.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02

from runtime.errors import FailedPrecondition


def load_vapid(private_key: str) -> Vapid02:
    text = private_key.strip()
    try:
        if "-----BEGIN" in text:
            return Vapid02.from_pem(text.encode())
        return Vapid02.from_raw(text.encode())
    except Exception as exc:  # py_vapid raises several types for a malformed key
        raise FailedPrecondition(f"VAPID_PRIVATE_KEY cannot be read: {exc}") from None


def public_key(private_key: str) -> str:
    point = load_vapid(private_key).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def generate_private_key() -> str:
    """A new private key, PEM."""
    vapid = Vapid02()
    vapid.generate_keys()
    return vapid.private_pem().decode()


def ensure_key_file(path: Path) -> str:
    """The PEM in ``path``, generated there (mode 0600) on first use (``make run``)."""
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = generate_private_key()
    path.touch(mode=0o600)
    path.write_text(pem)
    return pem
