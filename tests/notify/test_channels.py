"""Each channel delivers through the real path: gRPC Send -> database -> queue -> worker -> a
local server speaking the provider's protocol."""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest
from switchboard.notify.v1 import notify_pb2

from devsupport.streams import next_message
from devsupport.waiting import wait_until
from tests.notify.harness import Notify

EMAIL = notify_pb2.NOTIFICATION_CHANNEL_EMAIL
TELEGRAM = notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM
WEB_PUSH = notify_pb2.NOTIFICATION_CHANNEL_WEB_PUSH
IN_APP = notify_pb2.NOTIFICATION_CHANNEL_IN_APP
SMS = notify_pb2.NOTIFICATION_CHANNEL_SMS
DELIVERED = notify_pb2.DELIVERY_STATE_DELIVERED
FAILED = notify_pb2.DELIVERY_STATE_FAILED


def to(**fields: str) -> notify_pb2.Recipient:
    return notify_pb2.Recipient(**fields)


async def test_an_email_arrives_as_multipart_text_and_html(notify: Notify) -> None:
    nid = await notify.send(
        channel=EMAIL,
        recipient=to(email="ann@example.com"),
        template="welcome",
        data={"name": "Ann <3", "company": "Acme", "login_url": "https://acme.example/login"},
    )
    status = await notify.settled(nid)
    assert status.state == DELIVERED
    assert [(a.attempt, a.ok) for a in status.attempts] == [(1, True)]
    (mail,) = await asyncio.to_thread(notify.providers.smtp.wait_for, 1)
    message = mail.message
    assert mail.rcpt_tos == ["ann@example.com"]
    assert message["Subject"] == "Welcome to Acme, Ann <3"
    assert "Hello Ann <3," in message.get_body(("plain",)).get_content()
    assert "<b>Ann &lt;3</b>" in message.get_body(("html",)).get_content()


async def test_an_smtp_5xx_fails_at_once_with_the_servers_reason(notify: Notify) -> None:
    notify.providers.smtp.handler.rejected.add("gone@example.com")
    nid = await notify.send(channel=EMAIL, recipient=to(email="gone@example.com"), subject="s", body="b")
    status = await notify.settled(nid)
    assert status.state == FAILED
    assert len(status.attempts) == 1
    assert "550" in status.last_error
    assert "no such user" in status.last_error


async def test_an_smtp_4xx_is_retried_until_the_attempts_are_used_up(notify: Notify) -> None:
    notify.providers.smtp.handler.deferred.add("busy@example.com")
    nid = await notify.send(
        channel=EMAIL, recipient=to(email="busy@example.com"), subject="s", body="b", max_attempts=3
    )
    status = await notify.settled(nid)
    assert status.state == FAILED
    assert [(a.attempt, a.ok) for a in status.attempts] == [(1, False), (2, False), (3, False)]
    assert status.last_error.startswith("gave up after 3 attempts: smtp 451")


async def test_a_telegram_message_is_sent_in_html_parse_mode(notify: Notify) -> None:
    nid = await notify.send(channel=TELEGRAM, recipient=to(telegram_chat_id="4242"), body="1 < 2")
    assert (await notify.settled(nid)).state == DELIVERED
    (message,) = notify.providers.bot.accepted
    assert (message["chat_id"], message["text"]) == ("4242", "1 &lt; 2")


async def test_a_long_telegram_text_arrives_as_parts_in_order_within_the_chat_limit(notify: Notify) -> None:
    text = "\n".join(["a" * 4000, "b" * 4000, "c" * 10])
    nid = await notify.send(channel=TELEGRAM, recipient=to(telegram_chat_id="77"), body=text)
    status = await notify.settled(nid)
    assert status.state == DELIVERED
    assert [m["text"][:1] for m in notify.providers.bot.accepted] == ["a", "b"]
    assert notify.providers.bot.limit_violations == 0
    assert [(a.attempt, a.ok) for a in status.attempts] == [(1, True)]


@pytest.mark.parametrize(
    ("setting", "reason"), [("blocked", "bot was blocked by the user"), ("unknown", "chat not found")]
)
async def test_a_blocked_or_unknown_chat_fails_at_once(notify: Notify, setting: str, reason: str) -> None:
    getattr(notify.providers.bot, setting).add("999")
    nid = await notify.send(channel=TELEGRAM, recipient=to(telegram_chat_id="999"), body="hi")
    status = await notify.settled(nid)
    assert status.state == FAILED
    assert len(status.attempts) == 1
    assert reason in status.last_error


async def test_a_telegram_429_holds_the_channel_and_uses_no_attempt(notify: Notify) -> None:
    bot = notify.providers.bot
    bot.flood_ratio, bot.flood_retry_after = 1.0, 1
    nid = await notify.send(channel=TELEGRAM, recipient=to(telegram_chat_id="5"), body="hi")

    async def rate_limited() -> bool:
        return bot.too_many >= 1

    await wait_until(rate_limited, within=20, what="the first 429")
    bot.flood_ratio = 0.0
    status = await notify.settled(nid)
    assert status.state == DELIVERED
    assert [(a.attempt, a.ok) for a in status.attempts] == [(1, True)]
    assert bot.sent_during_pause == 0
    assert bot.accepted[0]["at"] - bot.pauses[0][0] >= 0.75


async def test_telegram_sends_to_one_chat_are_spaced_by_the_chat_limit(notify: Notify) -> None:
    ids = [await notify.send(channel=TELEGRAM, recipient=to(telegram_chat_id="31"), body=f"m{i}") for i in range(3)]
    for nid in ids:
        assert (await notify.settled(nid)).state == DELIVERED
    bot = notify.providers.bot
    assert [m["text"] for m in bot.accepted] == ["m0", "m1", "m2"]
    assert bot.limit_violations == 0
    assert bot.too_many == 0
    times = [m["at"] for m in bot.accepted]
    assert all(later - earlier >= 0.75 for earlier, later in itertools.pairwise(times))


async def test_a_web_push_is_vapid_signed_and_decrypts_with_the_subscription_keys(notify: Notify) -> None:
    subscription = await notify.providers.new_push_subscription()
    await notify.stub.RegisterPushSubscription(
        notify_pb2.RegisterPushSubscriptionRequest(
            user_id="u1",
            endpoint=subscription["endpoint"],
            p256dh=subscription["keys"]["p256dh"],
            auth=subscription["keys"]["auth"],
        ),
        timeout=5,
    )
    nid = await notify.send(channel=WEB_PUSH, recipient=to(user_id="u1"), subject="Queue alert", body="5 waiting")
    assert (await notify.settled(nid)).state == DELIVERED
    (push,) = notify.providers.push.received
    assert push["payload"]["title"] == "Queue alert"
    assert push["payload"]["body"] == "5 waiting"
    assert push["payload"]["notificationId"] == nid
    assert notify.providers.push.refused == []


@pytest.mark.parametrize("answer", ["410", "404"])
async def test_a_gone_push_subscription_fails_permanently_and_is_removed(notify: Notify, answer: str) -> None:
    subscription = await notify.providers.new_push_subscription()
    # 410: a subscription the browser ended; 404: an endpoint the push service never issued.
    endpoint = subscription["endpoint"] if answer == "410" else f"{notify.providers.push_server.url}/push/0000"
    request = notify_pb2.RegisterPushSubscriptionRequest(
        user_id="u2", endpoint=endpoint, p256dh=subscription["keys"]["p256dh"], auth=subscription["keys"]["auth"]
    )
    await notify.stub.RegisterPushSubscription(request, timeout=5)
    notify.providers.push.subscriptions[subscription["id"]].active = False
    nid = await notify.send(channel=WEB_PUSH, recipient=to(user_id="u2"), subject="t", body="b", max_attempts=3)
    status = await notify.settled(nid)
    assert status.state == FAILED
    assert len(status.attempts) == 1
    assert f"push service {answer}" in status.last_error
    assert await notify.app.core.users.subscriptions("u2") == []


async def test_an_in_app_message_is_stored_and_reaches_an_open_watch(notify: Notify) -> None:
    stream = notify.stub.WatchInApp(notify_pb2.WatchInAppRequest(user_id="op-7"), timeout=30)

    async def watched() -> bool:
        return "op-7" in notify.app.core.hub._watchers

    first = asyncio.ensure_future(next_message(stream))
    await wait_until(watched, within=20, what="the watch to subscribe")
    nid = await notify.send(channel=IN_APP, recipient=to(user_id="op-7"), subject="Hi", body="Welcome")
    live = await asyncio.wait_for(first, 20)
    assert (live.subject, live.body, live.read) == ("Hi", "Welcome", False)
    stream.cancel()
    assert (await notify.settled(nid)).state == DELIVERED
    inbox = await notify.stub.ListInApp(notify_pb2.ListInAppRequest(user_id="op-7"), timeout=5)
    assert [m.message_id for m in inbox.messages] == [live.message_id]
    assert inbox.unread_count == 1
    marked = await notify.stub.MarkRead(notify_pb2.MarkReadRequest(user_id="op-7", all=True), timeout=5)
    assert marked.updated == 1
    inbox = await notify.stub.ListInApp(notify_pb2.ListInAppRequest(user_id="op-7", unread_only=True), timeout=5)
    assert (inbox.unread_count, list(inbox.messages)) == (0, [])


async def test_an_sms_reaches_the_provider_with_basic_auth(notify: Notify) -> None:
    nid = await notify.send(channel=SMS, recipient=to(phone="+4915112345678"), body="Your code is 1234")
    status = await notify.settled(nid)
    assert status.state == DELIVERED
    (message,) = notify.providers.sms.messages
    assert (message["to"], message["from"], message["body"]) == ("+4915112345678", "+15550001111", "Your code is 1234")


async def test_the_same_idempotency_key_answers_the_first_notification_and_sends_once(notify: Notify) -> None:
    fields = {"channel": EMAIL, "recipient": to(email="once@example.com"), "subject": "s", "body": "b"}
    first = await notify.send(**fields, idempotency_key="order-17")
    second = await notify.send(**fields, idempotency_key="order-17")
    assert first == second
    assert (await notify.settled(first)).state == DELIVERED
    await asyncio.to_thread(notify.providers.smtp.wait_for, 1)
    listed = await notify.stub.ListNotifications(notify_pb2.ListNotificationsRequest(), timeout=5)
    assert [n.notification_id for n in listed.notifications] == [first]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"channel": EMAIL, "recipient": to(email="nope"), "body": "b"}, "to"),
        ({"channel": 0, "recipient": to(email="a@example.com"), "body": "b"}, "channel"),
        ({"channel": SMS, "recipient": to(phone="+4915112345678"), "body": "x" * 1601}, "text"),
        ({"channel": EMAIL, "recipient": to(email="a@example.com"), "template": "welcome"}, "data.company"),
        ({"channel": EMAIL, "recipient": to(email="a@example.com"), "template": "nope"}, "template"),
        ({"channel": IN_APP, "recipient": to(user_id="u"), "body": "b", "delay_ms": -5}, "delayMs"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field_and_nothing_is_queued(
    notify: Notify, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await notify.send(**fields)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith(f"{field}:")
    listed = await notify.stub.ListNotifications(notify_pb2.ListNotificationsRequest(), timeout=5)
    assert list(listed.notifications) == []


async def test_a_delayed_notification_is_scheduled_then_delivered(notify: Notify) -> None:
    response = await notify.stub.Send(
        notify_pb2.SendRequest(
            notification=notify_pb2.Notification(channel=IN_APP, recipient=to(user_id="later"), body="b", delay_ms=300)
        ),
        timeout=5,
    )
    assert response.state == notify_pb2.DELIVERY_STATE_SCHEDULED
    status = await notify.settled(response.notification_id)
    assert status.state == DELIVERED
    assert status.delivered_at_ms - status.created_at_ms >= 300
