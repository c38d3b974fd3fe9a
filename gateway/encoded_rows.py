"""The status service's reads with each reply's rows left encoded: what the gateway's gRPC read
path turns into JSON (:class:`gateway.status_reads.RowJsonCache`).

On the wire a repeated message field is a run of length-delimited records, one per element,
exactly as a repeated ``bytes`` field is. So a copy of a reply's descriptor whose row fields
(operators, queues, channels) are retyped ``bytes`` parses the same reply bytes in C and hands
over each row as the bytes the status service sent: the JSON cache's key, parsed into its
``status_pb2`` message only when no earlier reply held it. Every other field (meta, revision,
GetQueue's own queue) parses into the generated types as before; fields this gateway does not
know stay unknown in both cases. A row's JSON depends only on its message, and parsing a row's
record alone gives the message a whole-reply parse would give (elements of a repeated field are
never merged), so the JSON is the same as from the full parse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, cast

import grpc.aio
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from switchboard.status.v1 import status_pb2

from runtime.grpc_client_calls import UnaryCaller

__all__ = ["EncodedRowsStub", "OperatorRows", "QueueWithOperators", "SnapshotRows", "encoded_rows_class"]

_ROW_TYPES = frozenset(
    "." + row.DESCRIPTOR.full_name for row in (status_pb2.Operator, status_pb2.Queue, status_pb2.Channel)
)
_FILE = "switchboard/gateway/internal/encoded_rows.proto"
_PACKAGE = "switchboard.gateway.internal"


def _encoded_rows_file() -> dict[str, type[Message]]:
    """Every reply of the status service's reads, rows retyped ``bytes``, by the reply's name."""
    replies: list[type[Message]] = [
        status_pb2.ListOperatorsResponse,
        status_pb2.GetOperatorResponse,
        status_pb2.ListQueuesResponse,
        status_pb2.GetQueueResponse,
        status_pb2.ListChannelsResponse,
        status_pb2.Snapshot,
    ]
    file = descriptor_pb2.FileDescriptorProto(
        name=_FILE, package=_PACKAGE, syntax="proto3", dependency=[status_pb2.DESCRIPTOR.name]
    )
    for reply in replies:
        message = file.message_type.add()
        reply.DESCRIPTOR.CopyToProto(message)
        for field in message.field:
            if field.label == field.LABEL_REPEATED and field.type_name in _ROW_TYPES:
                field.type = field.TYPE_BYTES
                field.ClearField("type_name")
    # In the generated messages' pool, so a reply's other message fields (meta, GetQueue's queue)
    # are the generated classes themselves.
    pool = descriptor_pool.Default()
    pool.Add(file)
    return {
        reply.DESCRIPTOR.name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{_PACKAGE}.{reply.DESCRIPTOR.name}")
        )
        for reply in replies
    }


_CLASSES = _encoded_rows_file()


def encoded_rows_class(reply: type[Message]) -> type[Message]:
    """The class that parses ``reply``'s bytes with its row fields as ``bytes``."""
    return _CLASSES[reply.DESCRIPTOR.name]


class OperatorRows(Protocol):
    """ListOperators' and GetOperator's reply."""

    operators: Sequence[bytes]
    meta: status_pb2.ReadMeta


class QueueRows(Protocol):
    queues: Sequence[bytes]
    meta: status_pb2.ReadMeta


class QueueWithOperators(Protocol):
    queue: status_pb2.Queue
    operators: Sequence[bytes]
    meta: status_pb2.ReadMeta


class ChannelRows(Protocol):
    channels: Sequence[bytes]
    meta: status_pb2.ReadMeta


class SnapshotRows(Protocol):
    operators: Sequence[bytes]
    queues: Sequence[bytes]
    channels: Sequence[bytes]
    timestamp: float
    source: int
    stale: bool
    revision: int
    last_ingest_at: float


def _serialize(request: Message) -> bytes:
    return request.SerializeToString()


class EncodedRowsStub:
    """The status service's read RPCs on ``channel``, each answering its reply with the rows
    encoded. ``channel`` has no interceptors: ``caller`` sends each call's metadata and makes its
    span (:class:`runtime.grpc_client_calls.UnaryCaller`), as an internal channel's interceptors would."""

    def __init__(self, channel: grpc.aio.Channel, caller: UnaryCaller) -> None:
        service = status_pb2.DESCRIPTOR.services_by_name["StatusService"]
        self._caller = caller

        def call(name: str, *, parsed: bool = True) -> tuple[str, grpc.aio.UnaryUnaryMultiCallable[Message, Any]]:
            reply = _CLASSES[service.methods_by_name[name].output_type.name]
            method = f"/{service.full_name}/{name}"
            return method, channel.unary_unary(
                method,
                request_serializer=_serialize,
                response_deserializer=reply.FromString if parsed else None,
                # As the generated stub does: the method is registered with the channel once.
                _registered_method=True,  # type: ignore[call-arg]  # not in types-grpcio
            )

        self._list_operators = call("ListOperators")
        self._get_operator = call("GetOperator")
        self._list_queues = call("ListQueues")
        self._get_queue = call("GetQueue")
        self._list_channels = call("ListChannels")
        self._get_snapshot = call("GetSnapshot", parsed=False)

    # Each returns the call's reply, typed as the reply with its rows encoded.
    def list_operators(
        self, request: status_pb2.ListOperatorsRequest, deadline_seconds: float
    ) -> Awaitable[OperatorRows]:
        return cast(Awaitable[OperatorRows], self._caller(*self._list_operators, request, deadline_seconds))

    def get_operator(self, request: status_pb2.GetOperatorRequest, deadline_seconds: float) -> Awaitable[OperatorRows]:
        return cast(Awaitable[OperatorRows], self._caller(*self._get_operator, request, deadline_seconds))

    def list_queues(self, deadline_seconds: float) -> Awaitable[QueueRows]:
        request = status_pb2.ListQueuesRequest()
        return cast(Awaitable[QueueRows], self._caller(*self._list_queues, request, deadline_seconds))

    def get_queue(self, name: str, deadline_seconds: float) -> Awaitable[QueueWithOperators]:
        request = status_pb2.GetQueueRequest(name=name)
        return cast(Awaitable[QueueWithOperators], self._caller(*self._get_queue, request, deadline_seconds))

    def list_channels(self, deadline_seconds: float) -> Awaitable[ChannelRows]:
        request = status_pb2.ListChannelsRequest()
        return cast(Awaitable[ChannelRows], self._caller(*self._list_channels, request, deadline_seconds))

    def snapshot_bytes(self, deadline_seconds: float) -> Awaitable[bytes]:
        """GetSnapshot's reply as the status service sent it (:mod:`gateway.snapshot_replies` reads it)."""
        request = status_pb2.GetSnapshotRequest()
        return cast(Awaitable[bytes], self._caller(*self._get_snapshot, request, deadline_seconds))
