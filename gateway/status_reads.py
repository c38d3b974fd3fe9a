"""Every status read of the gateway, on one path: the mirror while it is live and fresh,
otherwise one gRPC call to the status service.

Each read returns the finished JSON body (``{"success": true, "data": …, "meta": {…}}``: meta
holds ``source``, ``stale``, ``asOf`` and ``lastIngestAt``, lists add ``count``), assembled from
encoded rows: the mirror's, joined as they are (:class:`~gateway.status_json_state.JsonReadState`),
or the gRPC reply's, whose rows arrive still encoded (:mod:`gateway.encoded_rows`): each row is
parsed and converted once and kept by its encoding (:class:`RowJsonCache`), so a row an earlier
reply held as it is now is neither parsed nor converted again.
Both give the same JSON for the same state. A request the mirror cannot answer exactly (a name
the status service would refuse, an operator or queue it does not hold: the status service
words the 400 or 404) goes to the status service too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast

import orjson
from prometheus_client import Counter
from switchboard.status.v1 import status_pb2

from gateway.encoded_rows import EncodedRowsStub
from gateway.snapshot_replies import SnapshotReplies
from gateway.status_json import SOURCE_NAMES, at_ms, channel_json, duration_ms, operator_json, queue_json
from gateway.status_mirror import MirrorView, StatusMirror
from runtime.errors import NotFound
from runtime.status_model.rules import is_member_row, operator_matches

__all__ = ["STATUS_READS", "QueueRowJson", "RowJsonCache", "StatusReads"]

STATUS_READS = Counter(
    "switchboard_gateway_status_reads_total", "Status reads by where they were answered from.", ["path"]
)
_MIRROR_READS = STATUS_READS.labels("mirror")
_GRPC_READS = STATUS_READS.labels("grpc")

_REDIS = SOURCE_NAMES[status_pb2.SOURCE_REDIS].encode()


def _plain(name: str | None) -> bool:
    """A name the status service accepts as is: anything else goes there, for its exact 400."""
    return name is None or (len(name) <= 128 and name.isprintable())


RowT = TypeVar("RowT", status_pb2.Operator, status_pb2.Queue, status_pb2.Channel)

_SPARE_ROWS = 1024
"""Rows a cache keeps beyond twice the longest reply it converted, before it forgets the old ones."""


class RowJsonCache(Generic[RowT]):
    """Each row's JSON by the row's protobuf encoding: a reply's encoded rows as a JSON array,
    parsing and converting only the rows no earlier reply held as they are now.

    The status service answers every read with the whole rows, and most of them are unchanged
    since the last read; looking a row's bytes up costs a small part of parsing it and building
    its JSON object (Python). The JSON depends on nothing but the row, and the row on nothing but
    its bytes, so the encoding is an exact key. Rows that changed leave their old entries behind:
    once the cache holds more than twice the longest reply plus :data:`_SPARE_ROWS`, it keeps
    only the current reply's rows.

    A reply whose rows are, in order, the previous reply's (nothing changed in between: the
    usual case between two reads) takes the previous array as it is, joined once: comparing
    the rows' bytes costs a fraction of hashing and looking up each row.
    """

    def __init__(
        self,
        row_type: type[RowT],
        to_json: Callable[[RowT], dict[str, Any]],
        *,
        convert: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """``convert``: a row's JSON from its encoding, when it has a cheaper way than
        ``orjson.dumps(to_json(row_type.FromString(encoded)))`` to the same bytes."""
        parse = row_type.FromString
        # ``is None``, not ``or``: a converter may be falsy (QueueRowJson is, while its own cache is empty).
        self._convert: Callable[[bytes], bytes] = (
            convert if convert is not None else (lambda encoded: orjson.dumps(to_json(parse(encoded))))
        )
        self._json: dict[bytes, bytes] = {}
        self._longest = 0
        self._last_keys: list[bytes] = []
        self._last_pieces: list[bytes] = [b"[]"]
        self.repeated = False
        """Whether the last :meth:`chunks` call's rows were, in order, the ones of the call before."""

    def __len__(self) -> int:
        return len(self._json)

    @property
    def last_rows(self) -> list[bytes]:
        """The encoded rows of the last :meth:`chunks` call (read it, never change it)."""
        return self._last_keys

    def array(self, encoded: Sequence[bytes]) -> bytes:
        """The JSON array of the rows encoded in ``encoded``, in order."""
        return b"".join(self.chunks(encoded))

    def chunks(self, encoded: Sequence[bytes]) -> list[bytes]:
        """:meth:`array` in pieces (brackets, rows, commas), for the body's one join: joining and
        then concatenating hundreds of KiB allocates each time anew, and fresh pages cost a
        fault each, more than the copying. The list may be the one returned last time: read it,
        never change it."""
        keys = list(encoded)  # a reply's repeated field makes a new bytes object per access
        self.repeated = keys == self._last_keys
        if self.repeated:
            if len(self._last_pieces) > 1:  # the second read of the same rows: join them once
                self._last_pieces = [b"".join(self._last_pieces)]
            return self._last_pieces
        if not keys:
            self._last_keys, self._last_pieces = keys, [b"[]"]
            return self._last_pieces
        cached = self._json
        found: list[bytes | None] = list(map(cached.get, keys))
        if None in found:
            convert = self._convert
            for index, part in enumerate(found):
                if part is None:
                    key = keys[index]
                    found[index] = cached[key] = convert(key)
        parts = cast(list[bytes], found)  # every None was filled in
        self._longest = max(self._longest, len(keys))
        if len(cached) > 2 * self._longest + _SPARE_ROWS:
            self._json = dict(zip(keys, parts, strict=True))
        pieces = [b","] * (2 * len(parts) + 1)
        pieces[1::2] = parts
        pieces[0], pieces[-1] = b"[", b"]"
        self._last_keys, self._last_pieces = keys, pieces
        return pieces


class QueueRowJson:
    """A queue row's JSON from its encoding, converted but for its longest wait.

    The status service answers a queue with callers with ``longest_wait`` as of the answer, so
    that row's bytes differ on every read although nothing else in it changed: by its bytes alone
    (:class:`RowJsonCache`) it would be converted on every read. Here the row without its two wait
    fields is the key of its JSON, kept in two halves around the ``longestWaitMs`` value, and each
    read puts its own wait between them. The same bytes as ``orjson.dumps(queue_json(row))``.
    """

    def __init__(self) -> None:
        self._halves: dict[bytes, tuple[bytes, bytes]] = {}

    def __len__(self) -> int:
        return len(self._halves)

    def __call__(self, encoded: bytes) -> bytes:
        queue = status_pb2.Queue.FromString(encoded)
        wait_ms = duration_ms(queue.longest_wait)
        queue.ClearField("longest_wait")
        queue.ClearField("longest_wait_ms")
        key = queue.SerializeToString()
        halves = self._halves.get(key)
        if halves is None:
            if len(self._halves) >= _SPARE_ROWS:  # rows whose callers changed: forget them all
                self._halves.clear()
            halves = self._halves[key] = _split_at_wait(queue_json(queue))
        return b"".join((halves[0], str(wait_ms).encode(), halves[1]))


def _split_at_wait(fields: dict[str, Any]) -> tuple[bytes, bytes]:
    """``fields`` as JSON up to the ``longestWaitMs`` value and after it (both halves hold
    other members: the name comes before it, ``max`` and ``weight`` after it)."""
    names = list(fields)
    at = names.index("longestWaitMs")
    before = orjson.dumps({name: fields[name] for name in names[:at]})
    after = orjson.dumps({name: fields[name] for name in names[at + 1 :]})
    return before[:-1] + b',"longestWaitMs":', b"," + after[1:]


def _meta_fields(source: bytes, stale: bool, as_of: float, last_ingest_at: float) -> bytes:
    """The members of a read's ``meta`` (without braces), times as the JSON convention wants."""
    return (
        b'"source":"' + source + b'","stale":' + (b"true" if stale else b"false")
        + b',"asOf":' + orjson.dumps(at_ms(as_of)) + b',"lastIngestAt":' + orjson.dumps(at_ms(last_ingest_at))
    )  # fmt: skip


def _mirror_meta(view: MirrorView) -> bytes:
    return _meta_fields(_REDIS, False, view.now, view.last_ingest_at)


def _list_body(rows: Sequence[bytes], count: int, meta: bytes) -> bytes:
    """The body of a list read; ``rows`` the JSON array, in pieces or whole."""
    return b"".join((b'{"success":true,"data":', *rows, b',"meta":{"count":', str(count).encode(), b",", meta, b"}}"))


def _data_body(data: Sequence[bytes], meta: bytes) -> bytes:
    return b"".join((b'{"success":true,"data":', *data, b',"meta":{', meta, b"}}"))


def _snapshot_body(
    operators: Sequence[bytes],
    queues: Sequence[bytes],
    channels: Sequence[bytes],
    *,
    timestamp: float,
    source: bytes,
    stale: bool,
    revision: int,
    last_ingest_at: float,
) -> bytes:
    """The snapshot's body, joined once (each row list a JSON array, in pieces or whole)."""
    return b"".join(
        (
            b'{"success":true,"data":{"operators":', *operators, b',"queues":', *queues, b',"channels":', *channels,
            b',"revision":', str(revision).encode(), b'},"meta":{',
            _meta_fields(source, stale, timestamp, last_ingest_at), b"}}",
        )
    )  # fmt: skip


class StatusReads:
    def __init__(
        self,
        mirror: StatusMirror | None,
        stub: Callable[[], EncodedRowsStub],
        *,
        timeout_seconds: float,
    ) -> None:
        self.mirror = mirror
        self._stub = stub
        self.timeout_seconds = timeout_seconds
        self._operators = RowJsonCache(status_pb2.Operator, operator_json)
        self._queues = RowJsonCache(status_pb2.Queue, queue_json, convert=QueueRowJson())
        self._channels = RowJsonCache(status_pb2.Channel, channel_json)
        self._snapshots = SnapshotReplies(self._operators, self._channels)

    def _view(self, *names: str | None) -> MirrorView | None:
        """The mirror's answer, or None: then the read is one gRPC call (and counted as such)."""
        mirror = self.mirror
        view = mirror.view() if mirror is not None and all(_plain(name) for name in names) else None
        (_GRPC_READS if view is None else _MIRROR_READS).inc()
        return view

    async def operators(self, queue: str | None, status: int | None, paused: bool | None) -> bytes:
        """Operators filtered as asked (``None``: any)."""
        view = self._view(queue)
        if view is not None:
            rows, count = view.state.operators_where(
                lambda op: operator_matches(op, queue_name=queue, status=status, paused=paused)
            )
            return _list_body((rows,), count, _mirror_meta(view))
        request = status_pb2.ListOperatorsRequest()
        if queue is not None:
            request.queue_name = queue
        if status is not None:
            request.status = status_pb2.MemberStatus.ValueType(status)
        if paused is not None:
            request.paused = paused
        reply = await self._stub().list_operators(request, self.timeout_seconds)
        return _list_body(self._operators.chunks(reply.operators), len(reply.operators), _meta(reply.meta))

    async def queue_operators(self, queue: str, status: int | None, paused: bool | None) -> bytes:
        """:meth:`operators` of a queue named in the path: NotFound when no such queue is known
        (neither a queue row nor a member of one), as ``/queues/{name}`` and WatchSnapshot say."""
        body = await self.operators(queue, status, paused)
        if not body.startswith(b'{"success":true,"data":[],'):
            return body
        view = self._view(queue)
        if view is not None:
            _, members = view.state.operators_where(lambda op: op.queue_name == queue)
            if members or view.state.queue_encoded(queue, view.now) is not None:
                return body
            raise NotFound(f"no queue {queue!r} (neither a queue nor a member of one)", details={"queue": queue})
        reply = await self._stub().list_operators(
            status_pb2.ListOperatorsRequest(queue_name=queue), self.timeout_seconds
        )
        if not reply.operators:  # the status service words the 404 of a queue it does not know
            await self._stub().get_queue(queue, self.timeout_seconds)
        return body

    async def member(self, member_id: str, queue: str | None) -> bytes:
        """One member's rows (one per queue, or in ``queue`` only); NotFound when there are none."""
        view = self._view(member_id, queue)
        if view is not None:
            rows, count = view.state.operators_where(lambda op: is_member_row(op, member_id, queue))
            if count:  # none: the status service words the 404
                return _list_body((rows,), count, _mirror_meta(view))
        request = status_pb2.GetOperatorRequest(member_id=member_id)
        if queue is not None:
            request.queue_name = queue
        reply = await self._stub().get_operator(request, self.timeout_seconds)
        if not reply.operators:
            where = f" in queue {queue}" if queue is not None else ""
            raise NotFound(f"operator {member_id}{where} not found", details={"memberId": member_id})
        return _list_body(self._operators.chunks(reply.operators), len(reply.operators), _meta(reply.meta))

    async def queues(self) -> bytes:
        view = self._view()
        if view is not None:
            state = view.state
            return _list_body((state.queues_json(view.now),), state.counts()[1], _mirror_meta(view))
        reply = await self._stub().list_queues(self.timeout_seconds)
        return _list_body(self._queues.chunks(reply.queues), len(reply.queues), _meta(reply.meta))

    async def queue(self, name: str) -> bytes:
        """One queue with its operators."""
        view = self._view(name)
        queue = view.state.queue_encoded(name, view.now) if view is not None else None
        if view is not None and queue is not None:  # no such queue: the status service words the 404
            operators, _ = view.state.operators_where(lambda op: op.queue_name == name)
            return _data_body((b'{"queue":', queue, b',"operators":', operators, b"}"), _mirror_meta(view))
        reply = await self._stub().get_queue(name, self.timeout_seconds)
        data = b'{"queue":' + orjson.dumps(queue_json(reply.queue)) + b',"operators":'
        return _data_body((data, *self._operators.chunks(reply.operators), b"}"), _meta(reply.meta))

    async def channels(self) -> bytes:
        view = self._view()
        if view is not None:
            state = view.state
            return _list_body((state.channels_json(),), state.counts()[2], _mirror_meta(view))
        reply = await self._stub().list_channels(self.timeout_seconds)
        return _list_body(self._channels.chunks(reply.channels), len(reply.channels), _meta(reply.meta))

    async def snapshot(self) -> bytes:
        """Operators, queues and channels at one revision."""
        view = self._view()
        if view is not None:
            state = view.state
            return _snapshot_body(
                (state.operators_json(),),
                (state.queues_json(view.now),),
                (state.channels_json(),),
                timestamp=view.now,
                source=_REDIS,
                stale=False,
                revision=state.revision,
                last_ingest_at=view.last_ingest_at,
            )
        reply, operators, channels = self._snapshots.read(await self._stub().snapshot_bytes(self.timeout_seconds))
        return _snapshot_body(
            operators,
            self._queues.chunks(reply.queues),
            channels,
            timestamp=reply.timestamp,
            source=SOURCE_NAMES.get(reply.source, "unknown").encode(),
            stale=reply.stale,
            revision=reply.revision,
            last_ingest_at=reply.last_ingest_at,
        )


def _meta(meta: status_pb2.ReadMeta) -> bytes:
    return _meta_fields(
        SOURCE_NAMES.get(meta.source, "unknown").encode(), meta.stale, meta.timestamp, meta.last_ingest_at
    )
