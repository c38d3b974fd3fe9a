"""The failover drill's load (:mod:`scripts.drill`): calls through the gateways, counted per phase.

One thread per kind of call, each calling the gateways in turn with the suite's credential:
status reads that reach the status service, job enqueues, in-app notifications and image uploads
(a small JPEG, different each time so the media service never answers with an earlier
duplicate). The ids of the accepted enqueues, notifications and uploads are kept: the drill
checks at the end that every one of them finished.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from PIL import Image

from devsupport.auth import AUTH_HEADERS

JOB = {"name": "statistics_aggregation", "data": {"duration_ms": 200}}
"""A job that takes a while, so a killed worker has jobs in flight (re-run once their lease lapses)."""
NOTIFICATION = {"channel": "database", "to": "drill-operator", "text": "failover drill"}
"""An in-app notification: delivered by the notify worker into the inbox, no provider needed."""
CALLS = ("reads", "enqueues", "notifications", "uploads")
PAUSE_SECONDS = {"reads": 0.05, "enqueues": 0.05, "notifications": 0.05, "uploads": 0.5}
"""Between two calls of a kind: a steady load, not a flood (every process of the drill shares two
cores, and each accepted call is work the drill waits for at the end). Uploads are spaced more:
each costs the media workers an image to process and a copy to S3."""
UPLOAD_PATH = "/api/admin/media/upload-async"


@dataclass
class Tally:
    """Calls of one kind, counted by outcome and by drill phase."""

    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    why: Counter[str] = field(default_factory=Counter)
    """``"<phase>: <error>"`` of each failed call."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, phase: str, error: BaseException | None = None) -> None:
        with self.lock:
            if error is None:
                self.ok[phase] += 1
            else:
                self.failed[phase] += 1
                self.why[f"{phase}: {describe(error)}"] += 1


def describe(error: BaseException) -> str:
    """A failed call in a few words: the HTTP status and error code, or what the connection did."""
    if isinstance(error, urllib.error.HTTPError):
        try:
            code = json.loads(error.read() or b"{}").get("error", {}).get("code", "")
        except (ValueError, AttributeError, OSError):
            code = ""
        return f"HTTP {error.code} {code}".strip()
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)[:80]
    return f"{type(error).__name__}: {error}"[:80]


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **AUTH_HEADERS})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


def drill_image(number: int) -> bytes:
    """A 96×64 JPEG whose colour follows ``number``: every upload a different file."""
    colour = (number % 256, (number // 256) % 256, (number // 65536) % 256)
    out = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(out, "JPEG", quality=80)
    return out.getvalue()


def upload(gateway: str, number: int, timeout: float = 10.0) -> str:
    """Upload drill image ``number`` through ``gateway``; the accepted media's id."""
    body, content_type = urllib3.encode_multipart_formdata(
        {"file": (f"drill-{number}.jpg", drill_image(number), "image/jpeg")}
    )
    request = urllib.request.Request(
        f"{gateway}{UPLOAD_PATH}?ownerId=drill", data=body, headers={"content-type": content_type, **AUTH_HEADERS}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return str(json.load(answer)["data"]["mediaId"])


class Load:
    """A thread per kind of call, each calling the gateways in turn; ``phase`` labels the calls."""

    def __init__(self, gateways: list[str]) -> None:
        self.gateways = gateways
        self.phase = "warm-up"
        self.tallies = {name: Tally() for name in CALLS}
        self.accepted: list[str] = []
        self.notified: list[str] = []
        self.uploaded: list[str] = []
        self._uploads = 0
        self._stop = threading.Event()
        self._calls: dict[str, Callable[[str], None]] = {
            "reads": self._read,
            "enqueues": self._enqueue,
            "notifications": self._notify,
            "uploads": self._upload,
        }
        self._threads = [
            threading.Thread(target=self._loop, args=(name,), name=f"drill-{name}", daemon=True) for name in CALLS
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def call_once(self, name: str, gateway: str) -> bool:
        """One call of kind ``name`` through ``gateway``, counted; whether it was answered.

        An answer counts for the phase the call began in: it was answered while that phase's
        replica was down. A failure counts for the phase it failed in: a call still in flight
        when the drill kills a replica (the phase changes just before the kill) fails because of
        that kill, not because of whatever the phase it began in was."""
        began_in = self.phase
        try:
            self._calls[name](gateway)
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            self.tallies[name].record(self.phase, error)
            return False
        self.tallies[name].record(began_in)
        return True

    def _loop(self, name: str) -> None:
        turn = 0
        while not self._stop.is_set():
            if not self.call_once(name, self.gateways[turn % len(self.gateways)]):
                self._stop.wait(0.05)  # a refused connection returns at once: do not spin
            turn += 1
            self._stop.wait(PAUSE_SECONDS[name])

    @staticmethod
    def _read(gateway: str) -> None:
        http_json(f"{gateway}/api/queue-status/sync/status")

    def _enqueue(self, gateway: str) -> None:
        job_id = http_json(f"{gateway}/api/queues/workflow/jobs", JOB)["data"]["jobId"]
        self.accepted.append(job_id)

    def _notify(self, gateway: str) -> None:
        (notification_id,) = http_json(f"{gateway}/api/notifications", NOTIFICATION)["data"]["notificationIds"]
        self.notified.append(notification_id)

    def _upload(self, gateway: str) -> None:
        self._uploads += 1
        self.uploaded.append(upload(gateway, self._uploads))
