"""SendBatch: one insert and one enqueue per queue for the whole batch, each notification on its way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from switchboard.notify.v1 import notify_pb2

from services.notify.queues import NOTIFICATIONS, TELEGRAM
from tests.notify.harness import Notify, Providers, notify_settings, running_notify

EMAIL = notify_pb2.NOTIFICATION_CHANNEL_EMAIL
TELEGRAM_CHANNEL = notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM
DELIVERED = notify_pb2.DELIVERY_STATE_DELIVERED


def email(n: int) -> notify_pb2.Notification:
    return notify_pb2.Notification(
        channel=EMAIL, recipient=notify_pb2.Recipient(email=f"u{n}@example.com"), subject="s", body=f"m{n}"
    )


def telegram(chat: str, text: str) -> notify_pb2.Notification:
    return notify_pb2.Notification(
        channel=TELEGRAM_CHANNEL, recipient=notify_pb2.Recipient(telegram_chat_id=chat), body=text
    )


@pytest.fixture
async def idle_notify(redis_url: str, tmp_path: Path, providers: Providers) -> AsyncIterator[Notify]:
    """The service without workers: what a batch leaves in the database and the queues stays put."""
    async with running_notify(notify_settings(redis_url, tmp_path, providers), providers, workers=False) as notify:
        yield notify


async def test_a_batch_is_stored_with_one_insert_and_queued_with_one_call_per_queue(idle_notify: Notify) -> None:
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO NOTIFICATIONS"):
            inserts.append(statement)

    engine = idle_notify.app.core.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        batch = [email(n) for n in range(40)] + [telegram(str(500 + n), f"t{n}") for n in range(10)]
        reply = await idle_notify.stub.SendBatch(notify_pb2.SendBatchRequest(notifications=batch), timeout=30)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    ids = [r.notification_id for r in reply.results]
    assert len(set(ids)) == 50
    assert all(ids)
    assert len(inserts) == 1
    # Every job of one Lua enqueue call is stamped with the same server time.
    for queue, wanted in ((NOTIFICATIONS, ids[:40]), (TELEGRAM, ids[40:])):
        admin = next(a for a in idle_notify.app.admins if a.name == queue)
        jobs = [await admin.job(nid) for nid in wanted]
        assert len({job.enqueued_at for job in jobs}) == 1
        assert [job.data["notification_id"] for job in jobs] == wanted


async def test_a_refused_notification_in_a_batch_leaves_the_others_accepted_and_delivered(notify: Notify) -> None:
    bad = notify_pb2.Notification(channel=EMAIL, recipient=notify_pb2.Recipient(email="not-an-address"), body="x")
    batch = [email(1), bad, telegram("77", "hello"), email(2)]
    reply = await notify.stub.SendBatch(notify_pb2.SendBatchRequest(notifications=batch), timeout=30)
    results = sorted(reply.results, key=lambda r: r.index)
    assert [bool(r.notification_id) for r in results] == [True, False, True, True]
    assert results[1].error.startswith("to: 'not-an-address' is not an email address")
    for result in (results[0], results[2], results[3]):
        assert (await notify.settled(result.notification_id)).state == DELIVERED
    assert sorted(m.rcpt_tos for m in notify.providers.smtp.received) == [["u1@example.com"], ["u2@example.com"]]
    assert [m["text"] for m in notify.providers.bot.accepted] == ["hello"]


async def test_keyed_and_unkeyed_notifications_in_one_batch_each_keep_their_meaning(notify: Notify) -> None:
    keyed = email(3)
    keyed.idempotency_key = "batch-key-1"
    first = await notify.stub.SendBatch(notify_pb2.SendBatchRequest(notifications=[email(4), keyed]), timeout=30)
    again = await notify.stub.SendBatch(notify_pb2.SendBatchRequest(notifications=[email(5), keyed]), timeout=30)
    assert first.results[1].notification_id == again.results[1].notification_id
    assert first.results[0].notification_id != again.results[0].notification_id
    for result in (*first.results, again.results[0]):
        assert (await notify.settled(result.notification_id)).state == DELIVERED
    assert len(notify.providers.smtp.received) == 3


def keyed_email(n: int, key: str) -> notify_pb2.Notification:
    message = email(n)
    message.idempotency_key = key
    return message


async def test_a_keyed_batch_is_checked_with_one_query_stored_with_one_insert_and_queued_once_per_key(
    idle_notify: Notify,
) -> None:
    earlier = await idle_notify.stub.SendBatch(
        notify_pb2.SendBatchRequest(notifications=[keyed_email(0, "k-held")]), timeout=30
    )
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "notifications" in statement.lower():
            statements.append(statement.split()[0].upper())

    engine = idle_notify.app.core.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        batch = [keyed_email(n, f"k-{n}") for n in range(20)]
        batch += [keyed_email(99, "k-held"), keyed_email(100, "k-3")]  # held before, and twice in the batch
        reply = await idle_notify.stub.SendBatch(notify_pb2.SendBatchRequest(notifications=batch), timeout=30)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    ids = [r.notification_id for r in sorted(reply.results, key=lambda r: r.index)]
    assert statements == ["SELECT", "INSERT"]
    assert ids[20] == earlier.results[0].notification_id
    assert ids[21] == ids[3]
    assert len(set(ids[:20])) == 20
    admin = next(a for a in idle_notify.app.admins if a.name == NOTIFICATIONS)
    assert (await admin.counts()).waiting == 21  # the earlier one and the 20 new: no job twice


async def test_concurrent_keyed_batches_store_and_send_each_key_once(notify: Notify) -> None:
    batch = notify_pb2.SendBatchRequest(notifications=[keyed_email(n, f"race-{n}") for n in range(10)])
    replies = await asyncio.gather(*(notify.stub.SendBatch(batch, timeout=60) for _ in range(4)))
    per_key = [{sorted(r.results, key=lambda x: x.index)[n].notification_id for r in replies} for n in range(10)]
    assert all(len(ids) == 1 for ids in per_key)
    for ids in per_key:
        assert (await notify.settled(ids.pop())).state == DELIVERED
    assert len(notify.providers.smtp.received) == 10
