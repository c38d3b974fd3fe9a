"""The database adapter: static queue configuration (tables ``queues`` and ``queue_members``).

The database holds what survives a Redis loss — which queues exist and who is a member with
which penalty, pause state and interfaces — never live call state. It is written through from
replace_all batches (a resync from Asterisk is the complete truth of that Asterisk server, its
``source_id``) by :class:`ConfigWriter`, off the ingest's hot path, and it answers reads when
Redis is unreachable. Every row remembers its source: one server's resync replaces that
server's rows (and rows of no source, written before sources were recorded), never another's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Boolean, Float, Integer, Row, String, delete, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from switchboard.status.v1 import status_pb2

from runtime.background import BackgroundTask
from runtime.logging import get_logger
from runtime.retry import RetryPolicy
from runtime.supervision import TaskSupervisor

log = get_logger("status.db")

_MEMBERSHIP_NAMES = {
    status_pb2.MEMBERSHIP_UNSPECIFIED: "",
    status_pb2.MEMBERSHIP_STATIC: "static",
    status_pb2.MEMBERSHIP_DYNAMIC: "dynamic",
    status_pb2.MEMBERSHIP_REALTIME: "realtime",
}
_MEMBERSHIP_VALUES = {name: value for value, name in _MEMBERSHIP_NAMES.items()}


class Base(DeclarativeBase):
    pass


class QueueRow(Base):
    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(64), default="")
    max_callers: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=0)
    service_level: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)
    source_id: Mapped[str] = mapped_column(String(128), default="")


class QueueMemberRow(Base):
    __tablename__ = "queue_members"

    queue_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    interface: Mapped[str] = mapped_column(String(256), primary_key=True)
    member_name: Mapped[str] = mapped_column(String(256), default="")
    state_interface: Mapped[str] = mapped_column(String(256), default="")
    membership: Mapped[str] = mapped_column(String(16), default="")
    penalty: Mapped[int] = mapped_column(Integer, default=0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str] = mapped_column(String(256), default="")
    ringinuse: Mapped[bool] = mapped_column(Boolean, default=False)
    wrapup_time: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)
    source_id: Mapped[str] = mapped_column(String(128), default="")


def queue_row(queue: status_pb2.Queue, now: float, source_id: str = "") -> dict[str, object]:
    return {
        "source_id": source_id,
        "name": queue.name,
        "strategy": queue.strategy,
        "max_callers": queue.max,
        "weight": queue.weight,
        "service_level": queue.service_level,
        "updated_at": queue.updated_at or now,
    }


def member_row(op: status_pb2.Operator, now: float, source_id: str = "") -> dict[str, object]:
    return {
        "source_id": source_id,
        "queue_name": op.queue_name,
        "interface": op.member_id,
        "member_name": op.member_name,
        "state_interface": op.state_interface,
        "membership": _MEMBERSHIP_NAMES.get(op.membership, ""),
        "penalty": op.penalty,
        "paused": op.paused,
        "paused_reason": op.paused_reason,
        "ringinuse": op.ringinuse,
        "wrapup_time": op.wrapup_time,
        "updated_at": op.updated_at or now,
    }


def queue_message(row: Any) -> status_pb2.Queue:
    return status_pb2.Queue(
        name=row.name,
        strategy=row.strategy,
        max=row.max_callers,
        weight=row.weight,
        service_level=row.service_level,
        updated_at=row.updated_at,
    )


def operator_message(row: Any) -> status_pb2.Operator:
    """A member as the database knows it: configuration only, device status unknown."""
    return status_pb2.Operator(
        queue_name=row.queue_name,
        member_id=row.interface,
        member_name=row.member_name,
        state_interface=row.state_interface,
        membership=_MEMBERSHIP_VALUES.get(row.membership, status_pb2.MEMBERSHIP_UNSPECIFIED),
        status=status_pb2.MEMBER_STATUS_UNKNOWN,
        paused=row.paused,
        paused_reason=row.paused_reason,
        penalty=row.penalty,
        ringinuse=row.ringinuse,
        wrapup_time=row.wrapup_time,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True, slots=True)
class StaticConfig:
    queues: list[status_pb2.Queue]
    operators: list[status_pb2.Operator]


_BATCH: Final = 500
"""Rows per ``IN (...)`` list (well under every database's bound-parameter limit)."""


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _BATCH] for i in range(0, len(items), _BATCH)]


class StatusDatabase:
    """Reads and writes of the static configuration."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def _rows(self) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
        """Every queue row by name and every member row by queue and interface, in one connection.

        Core rows, not ORM objects: the fallback read path loads every member each time."""
        queue_table, member_table = QueueRow.__table__, QueueMemberRow.__table__
        async with self.engine.connect() as connection:
            queues = (await connection.execute(select(queue_table).order_by(queue_table.c.name))).all()
            members = (
                await connection.execute(
                    select(member_table).order_by(member_table.c.queue_name, member_table.c.interface)
                )
            ).all()
        return queues, members

    async def load(self) -> StaticConfig:
        queues, members = await self._rows()
        return StaticConfig([queue_message(q) for q in queues], [operator_message(m) for m in members])

    async def load_by_source(self) -> dict[str, StaticConfig]:
        """The configuration grouped by the source each row came from ('' = no source recorded)."""
        queues, members = await self._rows()
        grouped: dict[str, StaticConfig] = {}
        for queue in queues:
            grouped.setdefault(queue.source_id, StaticConfig([], [])).queues.append(queue_message(queue))
        for member in members:
            grouped.setdefault(member.source_id, StaticConfig([], [])).operators.append(operator_message(member))
        return grouped

    async def replace(
        self, source_id: str, queues: Sequence[status_pb2.Queue], operators: Sequence[status_pb2.Operator]
    ) -> None:
        """Make ``source_id``'s rows exactly these queues and members (one transaction).

        Other sources' rows stay, except a row with the same key (queue name, or queue and
        interface) as one of these: it now belongs to ``source_id``, as in Redis.
        """
        now = time.time()
        queue_rows = list({q.name: queue_row(q, now, source_id) for q in queues}.values())
        member_rows = list({(o.queue_name, o.member_id): member_row(o, now, source_id) for o in operators}.values())
        replaced = [source_id, ""]
        async with self.sessions.begin() as session:
            await session.execute(delete(QueueMemberRow).where(QueueMemberRow.source_id.in_(replaced)))
            await session.execute(delete(QueueRow).where(QueueRow.source_id.in_(replaced)))
            for chunk in _chunks([(r["queue_name"], r["interface"]) for r in member_rows]):
                key = tuple_(QueueMemberRow.queue_name, QueueMemberRow.interface)
                await session.execute(delete(QueueMemberRow).where(key.in_(chunk)))
            for chunk in _chunks([r["name"] for r in queue_rows]):
                await session.execute(delete(QueueRow).where(QueueRow.name.in_(chunk)))
            if queue_rows:
                await session.execute(insert(QueueRow), queue_rows)
            if member_rows:
                await session.execute(insert(QueueMemberRow), member_rows)

    async def counts(self) -> tuple[int, int]:
        """Members, queues."""
        async with self.sessions() as session:
            members = await session.scalar(select(func.count()).select_from(QueueMemberRow))
            queues = await session.scalar(select(func.count()).select_from(QueueRow))
        return int(members or 0), int(queues or 0)


class ConfigWriter:
    """Writes the latest replace_all configuration to the database in the background.

    Only the newest pending configuration of each source matters (each is that source's
    complete truth), so bursts coalesce into one write per source; a failed write is retried
    with backoff until a newer one replaces it.
    """

    def __init__(
        self, database: StatusDatabase, retry: RetryPolicy | None = None, *, tasks: TaskSupervisor | None = None
    ) -> None:
        self.database = database
        self.retry = retry or RetryPolicy(attempts=0, base=0.2, cap=10.0)
        self._pending: dict[str, StaticConfig] = {}
        self._wakeup = asyncio.Event()
        self._task = BackgroundTask(self._run, "status-config-writer", tasks=tasks)
        self.written = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(
        self, source_id: str, queues: Sequence[status_pb2.Queue], operators: Sequence[status_pb2.Operator]
    ) -> None:
        self._pending[source_id] = StaticConfig(list(queues), list(operators))
        self._idle.clear()
        self._wakeup.set()
        self._task.start()

    async def flush(self, wait_seconds: float = 5.0) -> bool:
        """Wait until nothing is pending (tests, shutdown)."""
        try:
            async with asyncio.timeout(wait_seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        await self.flush(wait_seconds=2.0)
        await self._task.stop()

    async def _run(self) -> None:
        failures = 0
        while not self._task.stopping:  # a cancel can be lost (runtime.background)
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending:
                continue
            source_id = next(iter(self._pending))
            config = self._pending.pop(source_id)
            try:
                await self.database.replace(source_id, config.queues, config.operators)
            except Exception as error:
                failures += 1
                log.warning("config write failed", source=source_id, error=repr(error), failures=failures)
                self._pending.setdefault(source_id, config)
                self._wakeup.set()
                await self._task.pause(self.retry.delay_for(failures))
                continue
            failures = 0
            self.written += 1
            log.info("config written", source=source_id, queues=len(config.queues), members=len(config.operators))
            if self._pending:
                self._wakeup.set()
            else:
                self._idle.set()
