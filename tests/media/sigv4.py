"""An AWS Signature Version 4 check of presigned S3 GET URLs, written from AWS's specification
(hashlib and hmac only, nothing of botocore), because moto's server serves a presigned URL without
checking its signature: a URL signed wrongly would pass the serving test alone."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Presigned:
    access_key_id: str
    region: str
    signed_at: dt.datetime
    expires_s: int


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def check_presigned_get(url: str, secret_access_key: str) -> Presigned:
    """What ``url`` was signed for; ValueError unless its signature is the one ``secret_access_key``
    gives for a GET of its path and query on its host (expiry, date and credential included)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    params = dict(query)
    if len(params) != len(query) or params.get("X-Amz-Algorithm") != ALGORITHM:
        raise ValueError(f"not a SigV4 query-signed URL: {url}")
    if params.get("X-Amz-SignedHeaders") != "host":
        raise ValueError(f"signed headers other than host: {params.get('X-Amz-SignedHeaders')}")
    signature = params.pop("X-Amz-Signature")
    key_id, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    amz_date = params["X-Amz-Date"]
    if (service, terminator) != ("s3", "aws4_request") or not amz_date.startswith(date):
        raise ValueError(f"credential scope {params['X-Amz-Credential']} does not match {amz_date}")
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))
    canonical_request = "\n".join(
        ["GET", parts.path or "/", canonical_query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_access_key}".encode(), date), region), "s3"), "aws4_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise ValueError("the signature does not match the request")
    signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return Presigned(key_id, region, signed_at, int(params["X-Amz-Expires"]))
