"""A worker reuses its SMTP sessions: one connection per concurrent send, not one per email."""

from __future__ import annotations

from switchboard.notify.v1 import notify_pb2

from tests.notify.harness import Notify

EMAIL = notify_pb2.NOTIFICATION_CHANNEL_EMAIL
DELIVERED = notify_pb2.DELIVERY_STATE_DELIVERED


def email(n: int) -> notify_pb2.Notification:
    return notify_pb2.Notification(
        channel=EMAIL, recipient=notify_pb2.Recipient(email=f"s{n}@example.com"), subject="s", body=f"m{n}"
    )


async def test_emails_sent_one_after_another_share_one_smtp_connection(notify: Notify) -> None:
    for n in range(5):
        nid = await notify.send(channel=EMAIL, recipient=notify_pb2.Recipient(email=f"a{n}@example.com"), body="b")
        assert (await notify.settled(nid)).state == DELIVERED
    peers = {m.peer for m in notify.providers.smtp.received}
    assert len(notify.providers.smtp.received) == 5
    assert len(peers) == 1


async def test_a_burst_opens_at_most_one_connection_per_concurrent_send(notify: Notify) -> None:
    batch = [email(n) for n in range(40)]
    reply = await notify.stub.SendBatch(notify_pb2.SendBatchRequest(notifications=batch), timeout=30)
    for result in reply.results:
        assert (await notify.settled(result.notification_id)).state == DELIVERED
    peers = {m.peer for m in notify.providers.smtp.received}
    assert len(notify.providers.smtp.received) == 40
    assert 1 <= len(peers) <= notify.settings.notify_concurrency


async def test_a_connection_the_server_dropped_is_replaced_and_the_email_still_arrives(notify: Notify) -> None:
    smtp = notify.providers.smtp
    first = await notify.send(channel=EMAIL, recipient=notify_pb2.Recipient(email="before@example.com"), body="b")
    assert (await notify.settled(first)).state == DELIVERED
    smtp.restart()  # the worker's idle session is gone with the old server
    second = await notify.send(channel=EMAIL, recipient=notify_pb2.Recipient(email="after@example.com"), body="b")
    assert (await notify.settled(second)).state == DELIVERED
    before, after = smtp.received
    assert before.peer != after.peer
