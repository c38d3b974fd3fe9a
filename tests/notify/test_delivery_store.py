"""The worker's batched reads and writes of notifications: one query for the reads of a loop turn,
one transaction for the writes queued meanwhile, the same states as one write at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from switchboard.notify.v1 import notify_pb2

from runtime.errors import NotFound
from services.notify.delivery_store import BatchedDeliveryStore
from services.notify.records import AttemptOutcome, State
from tests.notify.harness import Notify, Providers, notify_settings, running_notify


@pytest.fixture
async def idle_notify(redis_url: str, tmp_path: Path, providers: Providers) -> AsyncIterator[Notify]:
    """The service without workers: nothing delivers what the tests store."""
    async with running_notify(notify_settings(redis_url, tmp_path, providers), providers, workers=False) as notify:
        yield notify


async def stored(notify: Notify, count: int) -> list[str]:
    return [
        await notify.send(
            channel=notify_pb2.NOTIFICATION_CHANNEL_EMAIL,
            recipient=notify_pb2.Recipient(email=f"u{i}@example.com"),
            subject="s",
            body=f"b{i}",
        )
        for i in range(count)
    ]


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements on the notification tables the engine runs meanwhile (an executemany
    counts once), and ``COMMIT``s. Others are left out: the running service's health check sends
    ``SELECT 1`` on the same engine every second, which a slow machine lets fall inside the batch."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "notification" in statement:
            seen.append(statement.split()[0].upper())

    def committed(conn: Any) -> None:
        seen.append("COMMIT")

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    event.listen(engine.sync_engine, "commit", committed)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        event.remove(engine.sync_engine, "commit", committed)


async def test_reads_of_one_loop_turn_are_one_query_and_a_missing_id_fails_only_its_caller(
    idle_notify: Notify,
) -> None:
    ids = await stored(idle_notify, 5)
    batched = BatchedDeliveryStore(idle_notify.app.core.store.engine)
    with statements(batched.engine) as seen:
        found = await asyncio.gather(*(batched.get(i) for i in [*ids, "missing"]), return_exceptions=True)
    assert [n.id for n in found[:5] if not isinstance(n, BaseException)] == ids
    assert isinstance(found[5], NotFound)
    assert seen.count("SELECT") == 1


async def test_writes_queued_together_commit_in_one_transaction_with_the_states_of_single_writes(
    idle_notify: Notify,
) -> None:
    store = idle_notify.app.core.store
    delivered, retrying, requeued, failed = await stored(idle_notify, 4)
    batched = BatchedDeliveryStore(store.engine)
    with statements(store.engine) as seen:
        await asyncio.gather(
            *(batched.mark_sending(i) for i in (delivered, retrying, requeued, failed)),
            batched.record_attempt(delivered, AttemptOutcome(1, 1000, State.DELIVERED, provider_id="<m1>")),
            batched.record_attempt(
                retrying, AttemptOutcome(1, 1001, State.RETRYING, error="421 busy", next_attempt_at_ms=3001)
            ),
            batched.mark_requeued(requeued, reason="held", next_attempt_at_ms=5000),
            batched.record_attempt(failed, AttemptOutcome(1, 1002, State.FAILED, error="550 no such user")),
        )
    # In the order asked, consecutive writes of a kind as one statement: sending x4, attempt x2
    # (their rows, then their states), requeued, attempt.
    assert seen == ["UPDATE", "INSERT", "UPDATE", "UPDATE", "INSERT", "UPDATE", "COMMIT"]

    one = await store.get(delivered)
    assert (one.state, one.delivered_at_ms, one.provider_id, one.last_error) == (State.DELIVERED, 1000, "<m1>", "")
    assert [(a.attempt, a.ok) for a in one.attempts] == [(1, True)]
    two = await store.get(retrying)
    assert (two.state, two.next_attempt_at_ms, two.last_error, two.delivered_at_ms) == (
        State.RETRYING,
        3001,
        "421 busy",
        0,
    )
    assert [(a.ok, a.error) for a in two.attempts] == [(False, "421 busy")]
    three = await store.get(requeued)
    assert (three.state, three.last_error, three.next_attempt_at_ms, three.attempts) == (
        State.RETRYING,
        "held",
        5000,
        [],
    )
    assert (await store.get(failed)).state is State.FAILED


async def test_a_late_sending_or_requeue_does_not_move_a_finished_notification_back(idle_notify: Notify) -> None:
    store = idle_notify.app.core.store
    [nid] = await stored(idle_notify, 1)
    batched = BatchedDeliveryStore(store.engine)
    await batched.record_attempt(nid, AttemptOutcome(1, 1000, State.DELIVERED, provider_id="<m>"))
    await asyncio.gather(batched.mark_sending(nid), batched.mark_requeued(nid, reason="x", next_attempt_at_ms=9))
    assert (await store.get(nid)).state is State.DELIVERED


async def test_a_batch_that_fails_fails_each_of_its_callers(idle_notify: Notify) -> None:
    store = idle_notify.app.core.store
    [nid] = await stored(idle_notify, 1)
    batched = BatchedDeliveryStore(store.engine)
    outcomes = await asyncio.gather(
        batched.mark_sending(nid),
        # No such notification: the attempt's row breaks the foreign key, and the whole batch fails.
        batched.record_attempt("no-such-id", AttemptOutcome(1, 1, State.DELIVERED)),
        return_exceptions=True,
    )
    assert all(isinstance(o, Exception) for o in outcomes)
    assert (await store.get(nid)).state is State.QUEUED
