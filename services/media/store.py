"""Where media bytes live: a small object-store interface, the local store under DATA_DIR and S3.

Keys are relative paths (``originals/<id>``, ``variants/<id>/thumb.webp``, see
:mod:`services.media.domain.records`). The local store is the primary one (new objects are
written there; on Kubernetes DATA_DIR is a shared volume); S3 (boto3, any S3 endpoint) is
where the sync jobs copy them. Readers go through :func:`read_object`: local first, then S3,
where a sync with ``deleteSource`` may have moved the only copy. Both compare content by MD5
(``ObjectInfo.md5``), so a sync can tell an object that is already there from one that differs.

boto3 and file I/O are blocking: every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from opentelemetry.trace import SpanKind

from runtime.errors import InvalidArgument, NotFound, TransientError
from runtime.telemetry import get_tracer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["TRACER", "LocalStore", "ObjectInfo", "ObjectStore", "S3Store", "read_object", "s3_client"]

TRACER = "switchboard.media"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    md5: str


class ObjectStore(Protocol):
    name: str

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...
    async def put_file(self, key: str, path: Path, content_type: str) -> None: ...
    async def get_bytes(self, key: str) -> bytes: ...
    async def stat(self, key: str) -> ObjectInfo | None: ...
    async def delete(self, key: str) -> bool: ...


async def read_object(local: ObjectStore, remote: ObjectStore | None, key: str) -> bytes:
    """The object's bytes from the local store, else from S3 (``remote``): a sync with
    ``deleteSource`` moves a media's objects to S3 and leaves no local copy. NotFound when neither has it."""
    try:
        return await local.get_bytes(key)
    except NotFound:
        if remote is None:
            raise
    return await remote.get_bytes(key)


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument("key", f"{key!r} is not a relative object key")
    return key


def _md5_of_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalStore:
    """Objects as files under ``root/objects``; uploads in progress under ``root/tmp``."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.objects / _check_key(key)

    def temp_path(self) -> Path:
        """A fresh file name for bytes still arriving (committed with :meth:`put_file`)."""
        return self.tmp / f"upload-{uuid.uuid4().hex}"

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self.path(key), data)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Move (a temp file under this store) or copy ``path`` to ``key``, atomically."""
        target = self.path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.parent == self.tmp:
                os.replace(path, target)
            else:
                self._write(target, path.read_bytes())

        await asyncio.to_thread(move)

    async def get_bytes(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(f"object {key} not found in the local store", details={"key": key}) from None

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self.path(key)

        def info() -> ObjectInfo | None:
            try:
                return ObjectInfo(path.stat().st_size, _md5_of_file(path))
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(info)

    async def delete(self, key: str) -> bool:
        path = self.path(key)

        def remove() -> bool:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            with contextlib.suppress(OSError):  # the media's directory, once empty
                path.parent.rmdir()
            return True

        return await asyncio.to_thread(remove)

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        partial.write_bytes(data)
        os.replace(partial, target)


def s3_client(endpoint_url: str, access_key: str, secret_key: str, region: str) -> S3Client:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, signature_version="s3v4")
    kwargs: dict[str, Any] = {"region_name": region, "config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if access_key:
        kwargs["aws_access_key_id"] = access_key
        kwargs["aws_secret_access_key"] = secret_key
    client: S3Client = boto3.client("s3", **kwargs)
    return client


class S3Store:
    """Objects in one S3 bucket, each under ``prefix`` + key."""

    name = "s3"

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return self.prefix + _check_key(key)

    def close(self) -> None:
        """Close the client's pooled HTTP connections (left open, they outlive the process's use of them)."""
        self.client.close()

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        await self._call(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
            Metadata={"md5": md5},
        )

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        data = await asyncio.to_thread(path.read_bytes)
        await self.put_bytes(key, data, content_type)

    async def get_bytes(self, key: str) -> bytes:
        try:
            response = await self._call(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        except NotFound:
            raise NotFound(f"object {key} not found in bucket {self.bucket}", details={"key": key}) from None
        body: bytes = await asyncio.to_thread(response["Body"].read)
        return body

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = await self._call(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except NotFound:
            return None
        # Our own MD5 (metadata) is exact; a single-part upload's ETag is the MD5 too.
        md5 = head.get("Metadata", {}).get("md5") or str(head.get("ETag", "")).strip('"')
        return ObjectInfo(int(head["ContentLength"]), md5)

    async def delete(self, key: str) -> bool:
        existed = await self.stat(key) is not None
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))
        return existed

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_s
        )
        return url

    async def _call(self, method: Any, **kwargs: Any) -> Any:
        operation = method.__name__  # put_object, head_object...: one CLIENT span per S3 call
        attributes = {
            "rpc.system": "aws-api",
            "rpc.service": "S3",
            "rpc.method": operation,
            "aws.s3.bucket": self.bucket,
        }
        if "Key" in kwargs:
            attributes["aws.s3.key"] = kwargs["Key"]
        with get_tracer(TRACER).start_as_current_span(f"S3.{operation}", kind=SpanKind.CLIENT, attributes=attributes):
            return await self._call_untraced(method, **kwargs)

    async def _call_untraced(self, method: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise NotFound(f"{kwargs.get('Key', '')} not found") from None
            if code.startswith("5") or code in {"SlowDown", "RequestTimeout", "InternalError"}:
                raise TransientError(f"S3 {code}: {exc}") from None
            raise
        except BotoCoreError as exc:  # connection refused, timeouts: worth retrying
            raise TransientError(f"S3 unreachable: {exc}") from None
