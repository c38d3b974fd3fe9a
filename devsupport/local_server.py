"""What the Redis and PostgreSQL servers the tests and ``make run`` start have in common: a
``with`` block starts one and closes it (stopped, its throwaway files gone), and its log's last
lines go into the error when it fails to start."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["LocalServer"]


class LocalServer(ABC):
    """A server process on a loopback port, owned by whoever made this object."""

    log_path: Path
    log_name: str  # "redis": the tail of a missing log reads "(no redis log)"

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no {self.log_name} log)"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
