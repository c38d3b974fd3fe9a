"""Builders for status messages (state changes, ingest batches, a whole contact center), shared by
the status tests and the benchmarks."""

from __future__ import annotations

import time

from switchboard.status.v1 import status_pb2


def operator(queue: str, member: str, **fields: object) -> status_pb2.Operator:
    values: dict[str, object] = {
        "member_name": member.split("/")[-1],
        "state_interface": member,
        "membership": status_pb2.MEMBERSHIP_STATIC,
        "status": status_pb2.MEMBER_STATUS_IDLE,
        "status_code": 1,
    }
    values.update(fields)
    return status_pb2.Operator(queue_name=queue, member_id=member, **values)  # type: ignore[arg-type]


def op_up(queue: str, member: str, **fields: object) -> status_pb2.StateChange:
    return status_pb2.StateChange(operator_upserted=operator(queue, member, **fields))


def op_rm(queue: str, member: str) -> status_pb2.StateChange:
    return status_pb2.StateChange(operator_removed=status_pb2.OperatorKey(queue_name=queue, member_id=member))


def queue_up(name: str, **fields: object) -> status_pb2.StateChange:
    return status_pb2.StateChange(queue_upserted=status_pb2.Queue(name=name, strategy="rrmemory", **fields))  # type: ignore[arg-type]


def channel_up(unique_id: str, **fields: object) -> status_pb2.StateChange:
    values: dict[str, object] = {"channel_name": f"PJSIP/{unique_id}", "state": "Up", "started_at": time.time()}
    values.update(fields)
    return status_pb2.StateChange(channel_upserted=status_pb2.Channel(unique_id=unique_id, **values))  # type: ignore[arg-type]


def batch(
    *changes: status_pb2.StateChange,
    sequence: int = 1,
    token: int = 0,
    source: str = "pbx1",
    replace_all: bool = False,
) -> status_pb2.IngestBatch:
    """A batch; ``token`` 0 means "the lease holder's" (filled in by ``devsupport.status_leases.stamp``)."""
    return status_pb2.IngestBatch(
        source_id=source,
        fencing_token=token,
        sequence=sequence,
        changes=list(changes),
        replace_all=replace_all,
        emitted_at=time.time(),
    )


def center(operators: int, queues: int, channels: int) -> list[status_pb2.StateChange]:
    """A contact center's full state: every operator in one queue, some callers waiting, calls up."""
    changes: list[status_pb2.StateChange] = []
    now = time.time()
    for q in range(queues):
        callers = [
            status_pb2.Caller(
                channel=f"PJSIP/trunk-{q}-{c}",
                caller_id_num=f"+4930{q:03d}{c:03d}",
                position=c + 1,
                waiting_since=now - 10 * (c + 1),
                unique_id=f"{now:.0f}.{q}{c}",
            )
            for c in range(q % 3)
        ]
        changes.append(queue_up(f"queue-{q:02d}", callers=callers, completed=q * 7, abandoned=q, service_level=60))
    for i in range(operators):
        changes.append(
            op_up(
                f"queue-{i % max(queues, 1):02d}",
                f"PJSIP/{1000 + i}",
                paused=i % 5 == 0,
                paused_reason="lunch" if i % 5 == 0 else "",
                calls_taken=i % 17,
                login_time=int(now) - 3600,
                in_call=i % 3 == 0,
            )
        )
    for c in range(channels):
        changes.append(channel_up(f"{now:.0f}.{c}", caller_id_num=f"+49301234{c:04d}", context="from-trunk"))
    return changes


def center_rows(
    operators: int, queues: int, channels: int
) -> tuple[list[status_pb2.Operator], list[status_pb2.Queue], list[status_pb2.Channel]]:
    """The rows of :func:`center` by kind: its operators, queues and channels."""
    changes = center(operators, queues, channels)
    return (
        [c.operator_upserted for c in changes if c.HasField("operator_upserted")],
        [c.queue_upserted for c in changes if c.HasField("queue_upserted")],
        [c.channel_upserted for c in changes if c.HasField("channel_upserted")],
    )
