"""The notify service on PostgreSQL (started by the tests): migrations, notifications and their
attempts, idempotency under concurrent sends, batches, the in-app inbox and push subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from switchboard.common.v1 import common_pb2
from switchboard.notify.v1 import notify_pb2

from services.notify.tables import AttemptRow, InAppRow, NotificationRow, PushSubscriptionRow
from tests.notify.harness import Notify, Providers, notify_settings, running_notify

EMAIL = notify_pb2.NOTIFICATION_CHANNEL_EMAIL
IN_APP = notify_pb2.NOTIFICATION_CHANNEL_IN_APP
DELIVERED = notify_pb2.DELIVERY_STATE_DELIVERED


def email(address: str, idempotency_key: str = "") -> notify_pb2.Notification:
    return notify_pb2.Notification(
        channel=EMAIL,
        recipient=notify_pb2.Recipient(email=address),
        subject="s",
        body="b",
        idempotency_key=idempotency_key,
    )


@pytest.fixture
async def pg_notify(redis_url: str, tmp_path: Path, providers: Providers, postgres_url: str) -> AsyncIterator[Notify]:
    settings = notify_settings(redis_url, tmp_path, providers, database_url=postgres_url)
    async with running_notify(settings, providers) as notify:
        assert notify.app.core.store.engine.dialect.name == "postgresql"
        async with notify.app.core.store.engine.begin() as connection:  # the database is shared: start empty
            for table in (AttemptRow, NotificationRow, InAppRow, PushSubscriptionRow):
                await connection.execute(delete(table))
        yield notify


async def test_on_postgresql_a_notification_is_delivered_with_its_attempt_recorded(pg_notify: Notify) -> None:
    nid = await pg_notify.send(channel=EMAIL, recipient=notify_pb2.Recipient(email="pg@example.com"), body="b")
    status = await pg_notify.settled(nid)
    assert status.state == DELIVERED
    assert [(a.attempt, a.ok) for a in status.attempts] == [(1, True)]
    assert [m.rcpt_tos for m in pg_notify.providers.smtp.received] == [["pg@example.com"]]


async def test_on_postgresql_concurrent_sends_with_one_idempotency_key_store_and_send_one(pg_notify: Notify) -> None:
    request = notify_pb2.SendRequest(notification=email("key@example.com", idempotency_key="pg-order-1"))
    replies = await asyncio.gather(*(pg_notify.stub.Send(request, timeout=30) for _ in range(8)))
    ids = {reply.notification_id for reply in replies}
    assert len(ids) == 1
    assert (await pg_notify.settled(ids.pop())).state == DELIVERED
    async with pg_notify.app.core.store.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(NotificationRow)) == 1
    assert len(pg_notify.providers.smtp.received) == 1


async def test_on_postgresql_a_batch_is_stored_at_once_and_every_notification_delivered(pg_notify: Notify) -> None:
    batch = [email(f"b{n}@example.com") for n in range(20)]
    reply = await pg_notify.stub.SendBatch(notify_pb2.SendBatchRequest(notifications=batch), timeout=30)
    for result in reply.results:
        assert (await pg_notify.settled(result.notification_id)).state == DELIVERED
    received = sorted(address for m in pg_notify.providers.smtp.received for address in m.rcpt_tos)
    assert received == sorted(f"b{n}@example.com" for n in range(20))


async def test_on_postgresql_the_inbox_pages_counts_unread_and_marks_read(pg_notify: Notify) -> None:
    ids = []
    for n in range(3):
        recipient = notify_pb2.Recipient(user_id="pg-op")
        ids.append(await pg_notify.send(channel=IN_APP, recipient=recipient, subject=f"s{n}", body=f"m{n}"))
    for nid in ids:
        assert (await pg_notify.settled(nid)).state == DELIVERED
    first_page = common_pb2.PageRequest(page=1, page_size=2)
    page = await pg_notify.stub.ListInApp(notify_pb2.ListInAppRequest(user_id="pg-op", page=first_page), timeout=5)
    assert (len(page.messages), page.unread_count) == (2, 3)
    one = page.messages[0].message_id
    marked = await pg_notify.stub.MarkRead(notify_pb2.MarkReadRequest(user_id="pg-op", message_ids=[one]), timeout=5)
    assert marked.updated == 1
    unread = await pg_notify.stub.ListInApp(notify_pb2.ListInAppRequest(user_id="pg-op", unread_only=True), timeout=5)
    assert unread.unread_count == 2
    assert one not in [m.message_id for m in unread.messages]


async def test_on_postgresql_registering_an_endpoint_again_keeps_its_subscription(
    pg_notify: Notify, providers: Providers
) -> None:
    subscription = await providers.new_push_subscription()
    keys = subscription["keys"]
    register = notify_pb2.RegisterPushSubscriptionRequest(
        user_id="pg-push", endpoint=subscription["endpoint"], p256dh=keys["p256dh"], auth=keys["auth"]
    )
    first = await pg_notify.stub.RegisterPushSubscription(register, timeout=5)
    again = await pg_notify.stub.RegisterPushSubscription(register, timeout=5)
    assert first.subscription_id == again.subscription_id
    assert [s.id for s in await pg_notify.app.core.users.subscriptions("pg-push")] == [first.subscription_id]
