"""Twilio's request signature (``X-Twilio-Signature``), which authenticates its status callbacks.

signature = base64(HMAC-SHA1(auth_token, url + key1 + value1 + key2 + value2 ...)), the POST
fields sorted by key. Only a holder of the account's auth token can produce it, so a callback
with a matching signature came from the provider.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def sign(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    payload = url + "".join(f"{key}{form[key]}" for key in sorted(form))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(auth_token: str, url: str, form: Mapping[str, str], signature: str) -> bool:
    return bool(auth_token) and hmac.compare_digest(sign(auth_token, url, form), signature)
