"""The status reads with their rows left encoded: the same replies as the generated stub's, the
rows as the status service's bytes, and the gateway's JSON byte for byte as from a full parse."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
import orjson
import pytest
from google.protobuf.message import Message
from switchboard.status.v1 import status_pb2 as S

from devsupport.status_batches import center_rows
from gateway.backends import Backends as GatewayBackends
from gateway.encoded_rows import encoded_rows_class
from gateway.settings import GatewaySettings
from gateway.status_json import channel_json, operator_json, queue_json
from gateway.status_reads import RowJsonCache
from tests.gateway.fake_status import FakeStatusService, operator

ROW_FIELDS: dict[str, Any] = {"operators": S.Operator, "queues": S.Queue, "channels": S.Channel}
META = S.ReadMeta(source=S.SOURCE_DATABASE, stale=True, timestamp=1_700_000_000.25, last_ingest_at_ms=5)
"""Every member set, so a meta that parsed wrong could not compare equal."""


def _rows() -> tuple[list[S.Operator], list[S.Queue], list[S.Channel]]:
    return center_rows(12, 3, 4)


def _replies() -> list[Message]:
    operators, queues, channels = _rows()
    return [
        S.ListOperatorsResponse(operators=operators, meta=META),
        S.GetOperatorResponse(operators=operators[:2], meta=META),
        S.ListQueuesResponse(queues=queues, meta=META),
        S.GetQueueResponse(queue=queues[1], operators=operators[3:6], meta=META),
        S.ListChannelsResponse(channels=channels, meta=META),
        S.Snapshot(
            operators=operators,
            queues=queues,
            channels=channels,
            timestamp=1_700_000_001.5,
            source=S.SOURCE_REDIS,
            stale=True,
            revision=42,
            last_ingest_at=1_700_000_000.75,
            timestamp_ms=7,
            last_ingest_at_ms=8,
        ),
    ]


def _same_reply(encoded: Any, reply: Message) -> None:
    """``encoded`` holds ``reply``'s fields, each row field as the rows' own encodings."""
    for field in reply.DESCRIPTOR.fields:
        value = getattr(encoded, field.name)
        if field.name in ROW_FIELDS:
            rows = list(getattr(reply, field.name))
            assert list(value) == [row.SerializeToString() for row in rows], field.name
            assert [ROW_FIELDS[field.name].FromString(raw) for raw in value] == rows, field.name
        else:
            assert value == getattr(reply, field.name), field.name
            assert type(value) is type(getattr(reply, field.name)), field.name  # the generated classes


@pytest.mark.parametrize("reply", _replies(), ids=lambda reply: type(reply).__name__)
def test_a_reply_parses_to_its_own_fields_with_each_row_as_its_encoding(reply: Message) -> None:
    _same_reply(encoded_rows_class(type(reply)).FromString(reply.SerializeToString()), reply)


def _record(number: int, payload: bytes) -> bytes:
    """A length-delimited field as the wire format writes it: tag, varint length, payload."""
    varint = bytearray()
    for value in (number << 3 | 2, len(payload)):
        while value > 0x7F:
            varint.append(value & 0x7F | 0x80)
            value >>= 7
        varint.append(value)
    return bytes(varint) + payload


def test_fields_the_gateway_does_not_know_are_left_aside_in_the_reply_and_in_its_rows() -> None:
    operators, queues, channels = _rows()
    snapshot = S.Snapshot(operators=operators, queues=queues, channels=channels, revision=3)
    newer_row = operators[0].SerializeToString() + _record(99, b"new")  # a field the gateway lacks
    # A newer status service: a row with a field 99, and a top-level field 99 between the rows.
    wire = _record(1, newer_row) + _record(99, b"up") + snapshot.SerializeToString()
    full = S.Snapshot.FromString(wire)
    encoded: Any = encoded_rows_class(S.Snapshot).FromString(wire)
    assert encoded.revision == full.revision == 3
    assert encoded.operators[0] == newer_row
    assert len(encoded.operators) == len(full.operators) == len(operators) + 1
    for name, to_json in (("operators", operator_json), ("queues", queue_json), ("channels", channel_json)):
        converted = RowJsonCache(ROW_FIELDS[name], to_json).array(getattr(encoded, name))
        assert converted == orjson.dumps([to_json(row) for row in getattr(full, name)]), name


def _snapshots() -> list[S.Snapshot]:
    """A center read after read: rows changed, removed, added, reordered, one state twice, emptied."""
    operators, queues, channels = _rows()
    states = [(operators, queues, channels)]
    changed = [operator(o.queue_name, o.member_id, status=S.MEMBER_STATUS_IN_USE, in_call=True) if i % 4 == 0 else o
               for i, o in enumerate(operators)]  # fmt: skip
    states.append((changed, queues, channels))
    states.append((changed[2:], queues[1:], channels))
    states.append(([operator("new", "PJSIP/9"), *changed], [S.Queue(name="new"), *queues], channels[::-1]))
    states.append(states[0])
    states.append(([], [], []))
    states.append(states[1])
    return [
        S.Snapshot(operators=o, queues=q, channels=c, revision=revision, timestamp=1_700_000_000.0 + revision)
        for revision, (o, q, c) in enumerate(states, start=1)
    ]


def test_each_snapshot_reads_as_the_json_of_its_full_parse_across_changes() -> None:
    converters: dict[str, Callable[[Any], dict[str, Any]]] = {
        "operators": operator_json, "queues": queue_json, "channels": channel_json,
    }  # fmt: skip
    caches = {name: RowJsonCache(ROW_FIELDS[name], to_json) for name, to_json in converters.items()}
    for snapshot in _snapshots():
        wire = snapshot.SerializeToString()
        full, encoded = S.Snapshot.FromString(wire), encoded_rows_class(S.Snapshot).FromString(wire)
        for name, to_json in converters.items():
            rows: Sequence[Any] = getattr(full, name)
            assert caches[name].array(getattr(encoded, name)) == orjson.dumps([to_json(row) for row in rows])


async def test_the_stub_answers_each_read_as_the_generated_stub_does(
    settings: GatewaySettings, fake_status: FakeStatusService
) -> None:
    backends = GatewayBackends(settings.service_addresses(), settings)
    await backends.open()
    try:
        plain, rows = backends.status, backends.status_rows
        pairs: list[tuple[Any, Message]] = [
            (await rows.list_operators(S.ListOperatorsRequest(queue_name="sales"), 5),
             await plain.ListOperators(S.ListOperatorsRequest(queue_name="sales"))),
            (await rows.get_operator(S.GetOperatorRequest(member_id="PJSIP/1002"), 5),
             await plain.GetOperator(S.GetOperatorRequest(member_id="PJSIP/1002"))),
            (await rows.list_queues(5), await plain.ListQueues(S.ListQueuesRequest())),
            (await rows.get_queue("sales", 5), await plain.GetQueue(S.GetQueueRequest(name="sales"))),
            (await rows.list_channels(5), await plain.ListChannels(S.ListChannelsRequest())),
            (encoded_rows_class(S.Snapshot).FromString(await rows.snapshot_bytes(5)),
             await plain.GetSnapshot(S.GetSnapshotRequest())),
        ]  # fmt: skip
        for encoded, reply in pairs:
            if hasattr(reply, "meta"):  # stamped with the time of each answer
                encoded.meta.timestamp = reply.meta.timestamp
                encoded.meta.last_ingest_at = reply.meta.last_ingest_at
            else:
                encoded.timestamp = reply.timestamp  # type: ignore[attr-defined]
            _same_reply(encoded, reply)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rows.get_queue("nowhere", 5)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert len(fake_status.requests) == 13  # every call reached the service
    finally:
        await backends.close()
