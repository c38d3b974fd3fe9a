"""What every media replica's disk spool holds, seen by the others.

Each replica spools to a file of its own (``MEDIA_SPOOL_PATH``; on Kubernetes the pod's own disk:
SQLite's WAL is not safe on the network filesystem of the shared ``media-data`` volume), so no
replica can read another's spool. Instead each publishes its spool's counts per queue as a small
JSON file in a directory on the shared volume (``DATA_DIR/media/spools``), written whole under a
temporary name and renamed (atomic, also over NFS), while the spool holds jobs; an empty spool
has no marker. A marker not rewritten within ``stale_after_s`` belongs to a process that is gone
and is ignored.

A marker is keyed by host and spool path: processes on one host sharing one spool file (the
default path under a local DATA_DIR) publish the same counts to the same marker, never twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from runtime.logging import get_logger

__all__ = ["SpoolMarkers"]

log = get_logger("media.spool_markers")


class SpoolMarkers:
    def __init__(self, directory: Path, spool: Path, *, stale_after_s: float, host: str | None = None) -> None:
        self.directory = directory
        self.spool = str(spool.resolve())
        self.host = host or socket.gethostname()
        self.stale_after_s = stale_after_s
        digest = hashlib.sha256(f"{self.host}\0{self.spool}".encode()).hexdigest()[:16]
        self.path = directory / f"{digest}.json"
        self._published: dict[str, int] | None = None

    def publish(self, counts: Mapping[str, int]) -> None:
        """Say this spool holds ``counts`` (queue → jobs); no jobs at all removes the marker."""
        held = {queue: n for queue, n in counts.items() if n > 0}
        if not held:
            if self._published != {}:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            self._published = {}
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        marker = {"host": self.host, "spool": self.spool, "queues": held, "atMs": int(time.time() * 1000)}
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(marker))
        os.replace(temporary, self.path)  # rewritten every time: its mtime is this spool's heartbeat
        self._published = held

    def others(self) -> Counter[str]:
        """Queue → jobs held by the other spools whose markers are fresh."""
        total: Counter[str] = Counter()
        oldest = time.time() - self.stale_after_s
        try:
            entries = list(self.directory.glob("*.json"))
        except OSError:
            return total
        for entry in entries:
            if entry == self.path:
                continue
            try:
                if entry.stat().st_mtime < oldest:
                    continue
                queues = json.loads(entry.read_text())["queues"]
                total.update({str(q): int(n) for q, n in queues.items()})
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                # Removed between the listing and the read, or a marker of another version: skipped.
                log.debug("spool marker skipped", marker=entry.name, error=str(exc))
        return total
