"""Kubernetes-style HTTP probes of a running process: ``/healthz`` and ``/readyz`` answer JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from devsupport.waiting import wait_until_blocking


def probe(url: str, timeout: float = 2.0) -> tuple[int, dict[str, Any]]:
    """Status code and JSON body of GET ``url``, 4xx/5xx included (a probe reads both)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def wait_for(url: str, status: int, within: float = 30.0, detail: Callable[[], str] | None = None) -> dict[str, Any]:
    """The JSON body once GET ``url`` answers ``status`` (nothing listening yet counts as not yet)."""

    def answered() -> dict[str, Any] | None:
        try:
            code, body = probe(url)
        except (urllib.error.URLError, OSError):
            return None
        return body if code == status else None

    return wait_until_blocking(answered, within=within, what=f"{url} answering {status}", interval=0.1, detail=detail)
