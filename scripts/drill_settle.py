"""What the drill (:mod:`scripts.drill`) checks once its load has stopped: every accepted job
completed, every accepted notification delivered, every accepted upload ready, synced and in
the bucket (original and every variant), read back through a gateway."""

from __future__ import annotations

import contextlib
import urllib.error
from collections.abc import Callable
from typing import Any

from devsupport.waiting import wait_until_blocking
from scripts.drill_load import http_json
from scripts.drill_suite import BUCKET, S3_KEY
from services.media.store import s3_client

__all__ = ["missing_from_the_bucket", "read", "state_is", "synced", "unfinished"]


def read(gateway: str, url: str) -> dict[str, Any] | None:
    """The ``data`` of a gateway answer; None when the gateway does not know it (404)."""
    try:
        data: dict[str, Any] = http_json(f"{gateway}{url}")["data"]
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise
    return data


def unfinished(
    gateway: str, ids: list[str], url: str, finished: Callable[[dict[str, Any]], bool], within: float
) -> list[str]:
    """Wait up to ``within`` s until ``finished`` holds for every ``url.format(id)``; the ids it
    never did (unknown ones count: lost)."""
    pending = list(ids)

    def done() -> bool:
        pending[:] = [item for item in pending if not finished(read(gateway, url.format(item)) or {})]
        return not pending

    with contextlib.suppress(TimeoutError):
        wait_until_blocking(done, within=within, what="every accepted one finished", interval=0.5)
    return pending


def missing_from_the_bucket(gateway: str, s3_url: str, media_ids: list[str]) -> list[str]:
    """The media whose original or any variant is not in the bucket."""
    keys: set[str] = set()
    with contextlib.closing(s3_client(s3_url, S3_KEY, S3_KEY, "us-east-1")) as client:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys.update(item["Key"] for item in page.get("Contents", []))
    missing = []
    for media_id in media_ids:
        media = read(gateway, f"/api/admin/media/{media_id}") or {}
        variants = len([key for key in keys if key.startswith(f"variants/{media_id}/")])
        if f"originals/{media_id}" not in keys or not media.get("variants") or variants != len(media["variants"]):
            missing.append(media_id)
    return missing


def state_is(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda data: data.get("state") == state


def synced(media: dict[str, Any]) -> bool:
    return media.get("state") == "ready" and bool(media.get("syncedToS3"))
