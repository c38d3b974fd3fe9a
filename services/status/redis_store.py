"""The Redis adapter: apply batches with one script call, read rows, follow the change stream.

Every mutation goes through a Lua script (:mod:`services.status.scripts`) — one EVALSHA per
batch, whatever its size. Connection problems surface as :class:`runtime.errors.Unavailable`
so callers can fall back to the database.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from switchboard.status.v1 import status_pb2

from runtime.errors import FailedPrecondition, Unavailable
from services.ami_ingest import keys as ingest_keys
from services.status import keys, scripts
from services.status.domain.batch import batch_emitted_at, changeset_tail, encode_changes
from services.status.domain.state import LiveState

T = TypeVar("T")

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    revision: int
    changes_applied: int
    operators: int = 0
    queues: int = 0
    channels: int = 0
    changeset: bytes = b""
    """The serialized ChangeSet the script added to the stream (empty when nothing changed)."""
    last_ingest_at: float = 0.0
    touched_at: float = 0.0


class PartiallyApplied(Exception):
    """Some batches of a group were applied, then one was refused (``error``)."""

    def __init__(self, applied: list[ApplyResult], error: FailedPrecondition) -> None:
        super().__init__(error.message)
        self.applied = applied
        self.error = error


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of the change stream: a ChangeSet (``raw_changes`` set) or a freshness heartbeat."""

    entry_id: bytes
    raw_changes: bytes
    last_ingest_at: float
    touched_at: float
    traceparent: str = ""
    """The W3C traceparent of the batch that made this change set ('' when untraced)."""

    @property
    def revision(self) -> int:
        """The revision this entry is at (its id is ``<revision>-<heartbeat>``)."""
        return int(self.entry_id.partition(b"-")[0])

    @property
    def changes(self) -> status_pb2.ChangeSet | None:
        """The ChangeSet, parsed on demand (the ingesting replica has usually applied it already)."""
        return status_pb2.ChangeSet.FromString(self.raw_changes) if self.raw_changes else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fenced_off(source_id: str, fencing_token: int, *, reason: str, token: str) -> FailedPrecondition:
    """The refusal of a batch whose token is not the lease holder's (``reason`` from the script)."""
    details: dict[str, Any] = {"sourceId": source_id, "fencingToken": fencing_token}
    if reason == "lease":
        details["leaseToken"] = int(token) if token else 0
        held = f"the lease holds token {token}" if token else "nobody holds the lease"
        message = f"fencing token {fencing_token} of source {source_id!r} is not the lease holder's ({held})"
    else:
        details["highest"] = int(token)
        message = f"fencing token {fencing_token} of source {source_id!r} is lower than {token}"
    return FailedPrecondition(message + ": another ingest leads this source", details=details)


class RedisStore:
    """Live rows in Redis (see :mod:`services.status.keys`)."""

    def __init__(self, client: Redis, *, live_ttl_seconds: int, stream_maxlen: int) -> None:
        self.client = client
        self.live_ttl_seconds = live_ttl_seconds
        self.stream_maxlen = stream_maxlen
        self._apply = client.register_script(scripts.APPLY)
        self._clear = client.register_script(scripts.CLEAR)

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            return await operation()
        except UNREACHABLE as error:
            raise Unavailable(f"redis unreachable: {error}") from error

    def _apply_args(
        self,
        changes: Iterable[status_pb2.StateChange],
        *,
        source_id: str,
        fencing_token: int,
        replace_all: bool,
        emitted_at: float,
        mode: str,
        touch_ingest: bool,
        now: float | None,
        owner: str,
        traceparent: str = "",
    ) -> list[Any]:
        encoded = encode_changes(changes)
        when = time.time() if now is None else now
        return [
            source_id,
            str(fencing_token),
            mode,
            "1" if replace_all else "0",
            repr(when),
            "1" if touch_ingest else "0",
            self.live_ttl_seconds,
            self.stream_maxlen,
            changeset_tail(emitted_at=emitted_at, replace_all=replace_all),
            encoded.count,
            owner,
            traceparent,
            *encoded.args,
        ]

    @staticmethod
    def _keys(source_id: str) -> list[str]:
        """The script's keys: every status key, then the lease key the fencing check reads."""
        return [*keys.ALL_KEYS, ingest_keys.leader_key(source_id)]

    @staticmethod
    def _result(reply: Any, source_id: str, fencing_token: int) -> ApplyResult:
        if int(reply[0]) < 0:
            raise _fenced_off(source_id, fencing_token, reason=_text(reply[2]), token=_text(reply[1]))
        revision, changes, operators, queues, channels = (int(value) for value in reply[1:6])
        if len(reply) < 9:  # the nx-if-empty early return: nothing was written
            return ApplyResult(revision, changes, operators, queues, channels)
        return ApplyResult(
            revision,
            changes,
            operators,
            queues,
            channels,
            changeset=bytes(reply[6]),
            last_ingest_at=float(reply[7] or 0),
            touched_at=float(reply[8] or 0),
        )

    async def apply(
        self,
        changes: Iterable[status_pb2.StateChange],
        *,
        source_id: str,
        fencing_token: int,
        replace_all: bool = False,
        emitted_at: float = 0.0,
        mode: str = "set",
        touch_ingest: bool = True,
        now: float | None = None,
        owner: str | None = None,
    ) -> ApplyResult:
        """Apply changes atomically (one EVALSHA); FailedPrecondition when fenced off.

        ``mode`` ``"nx"`` only adds rows that do not exist; ``"nx-if-empty"`` does so only when
        no live hash exists at all (seeding). ``source_id=""`` skips fencing (seeding, admin).
        ``owner`` is the source the rows belong to (default: ``source_id``).
        """
        args = self._apply_args(
            changes,
            source_id=source_id,
            fencing_token=fencing_token,
            replace_all=replace_all,
            emitted_at=emitted_at,
            mode=mode,
            touch_ingest=touch_ingest,
            now=now,
            owner=source_id if owner is None else owner,
        )
        reply = await self._call(lambda: self._apply(keys=self._keys(source_id), args=args))
        return self._result(reply, source_id, fencing_token)

    async def apply_batches(
        self, batches: Sequence[status_pb2.IngestBatch], traceparents: Sequence[str] = ()
    ) -> list[ApplyResult]:
        """Apply several batches in order, each atomically (its own script call), in ONE round trip.

        ``traceparents[i]`` goes into batch i's change-stream entry (the replicas' fan-outs join
        that span); without it the entry carries the batch's own ``trace_context``.

        Results come back in order; the first fenced-off batch raises FailedPrecondition after
        the ones before it were applied (the caller acknowledges those first, see the servicer).
        """

        parents = list(traceparents) or [b.trace_context.get("traceparent", "") for b in batches]
        if len(batches) == 1:  # the steady state: one EVALSHA, no pipeline bookkeeping
            batch = batches[0]
            reply = await self._call(
                lambda: self._apply(keys=self._keys(batch.source_id), args=self._batch_args(batch, parents[0]))
            )
            replies = [reply]
        else:
            calls = [(self._keys(b.source_id), self._batch_args(b, tp)) for b, tp in zip(batches, parents, strict=True)]
            replies = await self._call(lambda: self._evalsha_pipeline(calls))
        results: list[ApplyResult] = []
        for batch, reply in zip(batches, replies, strict=True):
            try:
                results.append(self._result(reply, batch.source_id, batch.fencing_token))
            except FailedPrecondition as refused:
                refused.details["appliedBefore"] = len(results)
                raise PartiallyApplied(results, refused) from refused
        return results

    def _batch_args(self, batch: status_pb2.IngestBatch, traceparent: str) -> list[Any]:
        return self._apply_args(
            batch.changes,
            source_id=batch.source_id,
            fencing_token=batch.fencing_token,
            replace_all=batch.replace_all,
            emitted_at=batch_emitted_at(batch),
            mode="set",
            touch_ingest=True,
            now=None,
            owner=batch.source_id,
            traceparent=traceparent,
        )

    async def _evalsha_pipeline(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """EVALSHA each argument list in one round trip; load the script on NOSCRIPT.

        redis-py's pipeline would send SCRIPT EXISTS first, a second round trip every time;
        here the script is loaded only when Redis says it lacks it (a restart, SCRIPT FLUSH).
        A NOSCRIPT reply means that call did not run, so the calls from the first one are sent
        again after loading: every batch still runs exactly once, in order.
        """
        replies: list[Any] = []
        pending = calls
        for _attempt in range(2):
            async with self.client.pipeline(transaction=False) as pipe:
                for script_keys, args in pending:
                    pipe.evalsha(self._apply.sha, len(script_keys), *script_keys, *args)
                answers: list[Any] = await pipe.execute(raise_on_error=False)
            missing = next((i for i, a in enumerate(answers) if isinstance(a, NoScriptError)), None)
            if missing is None:
                for answer in answers:
                    if isinstance(answer, Exception):
                        raise answer
                return replies + answers
            replies.extend(answers[:missing])
            pending = pending[missing:]
            self._apply.sha = await self.client.script_load(scripts.APPLY)
        raise Unavailable("redis keeps losing the status scripts")

    async def apply_batch(self, batch: status_pb2.IngestBatch) -> ApplyResult:
        return await self.apply(
            batch.changes,
            source_id=batch.source_id,
            fencing_token=batch.fencing_token,
            replace_all=batch.replace_all,
            emitted_at=batch_emitted_at(batch),
        )

    async def load(self) -> LiveState:
        """Every row and the revision they are at, read in one MULTI/EXEC (a consistent cut)."""

        async def read() -> list[Any]:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hgetall(keys.OPERATORS)
                pipe.hgetall(keys.QUEUES)
                pipe.hgetall(keys.CHANNELS)
                pipe.hmget(keys.META, [keys.META_REVISION, keys.META_LAST_INGEST_AT, keys.META_TOUCHED_AT])
                result: list[Any] = await pipe.execute()
                return result

        operators, queues, channels, meta = await self._call(read)
        revision, last_ingest_at, touched_at = meta
        return LiveState.from_rows(
            operators,
            queues,
            channels,
            revision=int(revision or 0),
            last_ingest_at=float(last_ingest_at or 0.0),
            touched_at=float(touched_at or 0.0),
        )

    async def read_stream(self, after: bytes, *, block_ms: int, count: int = 1000) -> list[StreamEntry]:
        """Stream entries after id ``after``; waits up to ``block_ms`` for the first one."""
        reply = await self._call(lambda: self.client.xread({keys.CHANGES: after}, count=count, block=block_ms))
        entries: list[StreamEntry] = []
        for _stream, items in reply or ():
            for entry_id, fields in items:
                entries.append(
                    StreamEntry(
                        entry_id=entry_id,
                        raw_changes=fields.get(b"cs", b""),
                        last_ingest_at=float(fields.get(b"at", 0) or 0),
                        touched_at=float(fields.get(b"tt", 0) or 0),
                        traceparent=fields.get(b"tp", b"").decode(),
                    )
                )
        return entries

    async def counts(self) -> tuple[int, int, int]:
        """Operators, queues, channels (HLEN of each hash)."""

        async def read() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hlen(keys.OPERATORS)
                pipe.hlen(keys.QUEUES)
                pipe.hlen(keys.CHANNELS)
                result: list[Any] = await pipe.execute()
                return result

        operators, queues, channels = await self._call(read)
        return int(operators), int(queues), int(channels)

    async def clear(self) -> tuple[int, int]:
        """Remove every status key; returns how many existed and the revision of the empty state."""
        tail = changeset_tail(emitted_at=time.time(), replace_all=True)
        args: list[Any] = [repr(time.time()), tail, self.live_ttl_seconds, self.stream_maxlen]
        reply = await self._call(lambda: self._clear(keys=list(keys.ALL_KEYS), args=args))
        return int(reply[0]), int(reply[1])

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except RedisError:
            return False
