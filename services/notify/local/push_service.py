"""A local Web Push service that also plays the browser: it creates subscriptions (keeping their
private keys), checks every push's VAPID JWT (RFC 8292) and decrypts its aes128gcm payload
(RFC 8188), keeping what it read.

- ``POST /subscriptions`` -> ``{"id", "endpoint", "keys": {"p256dh", "auth"}}`` (a browser's
  PushSubscription JSON); ``DELETE /subscriptions/{id}`` ends one: pushes to it get 410 Gone.
- ``POST /push/{id}``: 401 without a valid VAPID token for this origin, 400 when the payload does
  not decrypt, 404 for an id never issued, 410 for an ended one, else 201.
- ``GET /_log``: the decrypted pushes and the counters.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Subscription:
    id: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    active: bool = True


@dataclass
class PushState:
    origin: str = ""
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def subscribe(self) -> dict[str, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subscription = Subscription(os.urandom(8).hex(), key, os.urandom(16))
        self.subscriptions[subscription.id] = subscription
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "id": subscription.id,
            "endpoint": f"{self.origin}/push/{subscription.id}",
            "keys": {"p256dh": b64url(public), "auth": b64url(subscription.auth)},
        }


def check_vapid(authorization: str, origin: str, now: float) -> str | None:
    """None when the header carries a valid VAPID token for ``origin``, else what is wrong."""
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "vapid":
        return "Authorization is not 'vapid t=..., k=...'"
    params = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    token, key = params.get("t", ""), params.get("k", "")
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        raw = b64url_decode(signature_b64)
        signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(signature, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        header, claims = json.loads(b64url_decode(header_b64)), json.loads(b64url_decode(claims_b64))
    except (ValueError, InvalidSignature, json.JSONDecodeError):
        return "VAPID token does not verify with its key"
    if header.get("alg") != "ES256":
        return "VAPID token must be ES256"
    if claims.get("aud") != origin:
        return f"VAPID aud {claims.get('aud')!r} is not this push service ({origin})"
    exp = claims.get("exp")
    if not isinstance(exp, int) or not now < exp <= now + 24 * 3600:
        return "VAPID exp must be within the next 24 h"
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        return "VAPID sub must be a mailto: or https: URL"
    return None


def create_app(state: PushState) -> web.Application:
    async def subscribe(request: web.Request) -> web.Response:
        return web.json_response(state.subscribe(), status=201)

    async def unsubscribe(request: web.Request) -> web.Response:
        found = state.subscriptions.get(request.match_info["id"])
        if found is None:
            raise web.HTTPNotFound()
        found.active = False
        return web.Response(status=204)

    async def push(request: web.Request) -> web.Response:
        subscription = state.subscriptions.get(request.match_info["id"])
        if subscription is None:
            return web.Response(status=404, text="no such subscription")
        if not subscription.active:
            return web.Response(status=410, text="subscription expired")
        problem = check_vapid(request.headers.get("Authorization", ""), state.origin, time.time())
        if problem is not None:
            state.refused.append(problem)
            return web.Response(status=401, text=problem)
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return web.Response(status=415, text="Content-Encoding must be aes128gcm")
        body = await request.read()
        try:
            plain = http_ece.decrypt(
                body, private_key=subscription.private_key, auth_secret=subscription.auth, version="aes128gcm"
            )
        except Exception as exc:  # http_ece raises several types for a bad record
            state.refused.append(f"decrypt: {exc}")
            return web.Response(status=400, text=f"payload does not decrypt: {exc}")
        text = plain.decode()
        try:
            payload: Any = json.loads(text)
        except json.JSONDecodeError:
            payload = text
        state.received.append(
            {"subscription": subscription.id, "payload": payload, "ttl": request.headers.get("TTL"), "at": time.time()}
        )
        return web.Response(status=201, headers={"Location": f"{state.origin}/messages/{len(state.received)}"})

    async def log(request: web.Request) -> web.Response:
        return web.json_response({"received": state.received, "refused": state.refused})

    app = web.Application()
    app.router.add_post("/subscriptions", subscribe)
    app.router.add_delete("/subscriptions/{id}", unsubscribe)
    app.router.add_post("/push/{id}", push)
    app.router.add_get("/_log", log)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="local Web Push service")
    parser.add_argument("--port", type=int, default=8082)
    args = parser.parse_args()
    state = PushState(origin=f"http://127.0.0.1:{args.port}")
    web.run_app(create_app(state), host="127.0.0.1", port=args.port, access_log=None)


if __name__ == "__main__":
    main()
