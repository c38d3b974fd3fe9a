"""A durable local spool for enqueues made while Redis is unreachable.

SQLite in WAL mode with ``synchronous=FULL``: a row is fsynced before ``append`` returns, so an
accepted job survives a crash of the producer as well as the Redis outage.  Rows are flushed in
insertion order (the INTEGER PRIMARY KEY) and deleted only after Redis accepted them.

The same file remembers the queue declarations its owner has seen, so a queue declared before
an outage stays known (and its enqueues answerable) while Redis is away or came back empty.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from runtime.errors import AlreadyExists

SpooledRow = tuple[int, list[str]]


class DiskSpool:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spooled ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, job_id TEXT NOT NULL,"
            " fields TEXT NOT NULL, UNIQUE (queue, job_id))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS declarations (queue TEXT PRIMARY KEY, declaration TEXT NOT NULL)")

    def append(self, queue: str, job_id: str, fields: list[str]) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO spooled (queue, job_id, fields) VALUES (?, ?, ?)",
                    (queue, job_id, json.dumps(fields)),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"job {job_id!r} is already spooled for queue {queue!r}") from None

    def peek(self, queue: str, limit: int = 500) -> list[SpooledRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, fields FROM spooled WHERE queue = ? ORDER BY seq LIMIT ?", (queue, limit)
            ).fetchall()
        return [(seq, json.loads(fields)) for seq, fields in rows]

    def delete(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self._db.executemany("DELETE FROM spooled WHERE seq = ?", [(s,) for s in seqs])

    def count(self, queue: str) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM spooled WHERE queue = ?", (queue,)).fetchone()
        return int(n)

    def remember(self, declarations: dict[str, str]) -> None:
        """Keep these queue declarations (name → JSON) across restarts of this process."""
        with self._lock:
            self._db.executemany(
                "INSERT INTO declarations (queue, declaration) VALUES (?, ?)"
                " ON CONFLICT (queue) DO UPDATE SET declaration = excluded.declaration",
                list(declarations.items()),
            )

    def remembered(self) -> dict[str, str]:
        """The queue declarations kept by :meth:`remember`."""
        with self._lock:
            rows = self._db.execute("SELECT queue, declaration FROM declarations ORDER BY queue").fetchall()
        return {queue: declaration for queue, declaration in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
