"""The Telegram send gate: the Bot API's limits and a provider's hold checked right before sending."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from switchboard.notify.v1 import notify_pb2

from runtime.queue import Requeue
from runtime.queue.keys import QueueKeys
from runtime.queue.spec import RateLimit
from services.notify import keys
from services.notify.delivery import Deliverer
from services.notify.domain.channels import Channel
from services.notify.domain.outcomes import Outcome
from services.notify.queues import TELEGRAM, retry_policy
from services.notify.records import Notification, State
from services.notify.send_gate import TelegramSendGate, Verdict
from tests.notify.harness import Notify, Providers, notify_settings, running_notify

TELEGRAM_CHANNEL = notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM


def gate(redis: Redis, *, bot: int = 30, chat: str = "1/1s", group: str = "20/60s") -> TelegramSendGate:
    return TelegramSendGate(
        redis, TELEGRAM, bot=RateLimit(bot, 1.0), chat=RateLimit.parse(chat), group=RateLimit.parse(group)
    )


async def sent(g: TelegramSendGate, notification_id: str, chat: str) -> None:
    """Admitted, sent and answered: the floor is free again."""
    admission = await g.check(notification_id, chat)
    assert admission.verdict is Verdict.ADMITTED
    await g.finish(admission.ticket, chat)


async def test_a_chat_gets_one_send_per_window_and_the_refusal_says_how_long_to_wait(redis: Redis) -> None:
    g = gate(redis)
    await sent(g, "n1", "7")
    second = await g.check("n2", "7")
    assert second.verdict is Verdict.BUSY
    assert not second.bot_window
    assert 0 < second.wait_s <= 1.0
    assert (await g.check("n3", "8")).verdict is Verdict.ADMITTED


async def test_the_margins_lengthen_the_chat_and_the_bot_windows_each_by_their_own(redis: Redis) -> None:
    g = TelegramSendGate(
        redis, TELEGRAM, bot=RateLimit(1, 1.0), chat=RateLimit(1, 1.0), group=None, margin_s=10.0, bot_margin_s=3.0
    )
    await sent(g, "n1", "7")
    assert (await g.check("n2", "7")).wait_s > 4.0  # the chat's window: 1 s + 10 s of margin
    assert 1000 < await redis.pttl(keys.send_gate_window(TELEGRAM, "bot")) <= 4000
    assert 4000 < await redis.pttl(keys.send_gate_window(TELEGRAM, "chat:7")) <= 11000


async def test_the_bot_window_admits_its_rate_across_chats(redis: Redis) -> None:
    g = gate(redis, bot=3)
    for i in range(3):
        await sent(g, f"n{i}", str(100 + i))
    fourth = await g.check("n3", "103")
    assert (fourth.verdict, fourth.bot_window) == (Verdict.BUSY, True)


async def test_a_group_chat_is_limited_per_minute_on_top_of_the_chat_limit(redis: Redis) -> None:
    g = gate(redis, chat="", group="2/60s")
    await sent(g, "n0", "-1001")
    await sent(g, "n1", "-1001")
    assert (await g.check("n2", "-1001")).verdict is Verdict.BUSY
    assert (await g.check("private", "1001")).verdict is Verdict.ADMITTED


async def test_a_held_channel_admits_nothing_and_counts_nothing(redis: Redis) -> None:
    g = gate(redis)
    await redis.set(QueueKeys(TELEGRAM).hold, 1, px=5000)
    held = await g.check("n1", "7")
    assert held.verdict is Verdict.HELD
    assert 0 < held.wait_s <= 5.0
    assert await redis.exists(keys.send_gate_window(TELEGRAM, "bot")) == 0


async def test_one_send_at_a_time_another_waits_for_the_floor_until_the_answer_is_in(redis: Redis) -> None:
    g = gate(redis)
    first = await g.check("n1", "7")
    assert first.verdict is Verdict.ADMITTED
    assert (await g.check("n2", "8")).verdict is Verdict.FLOOR
    other_process = gate(redis)  # its own turn: it blocks on the doorbell, as another worker would
    waiting = asyncio.create_task(other_process.admit("n2", "8"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await g.finish(first.ticket, "7")
    assert (await asyncio.wait_for(waiting, 10)).verdict is Verdict.ADMITTED


async def test_a_floor_whose_sender_never_answers_lapses(redis: Redis) -> None:
    g = TelegramSendGate(redis, TELEGRAM, bot=RateLimit(30), chat=None, group=None, floor_s=0.3)
    assert (await g.check("n1", "7")).verdict is Verdict.ADMITTED  # a worker killed mid-send
    assert (await g.admit("n2", "8")).verdict is Verdict.ADMITTED


async def test_a_floor_still_taken_after_the_wait_bound_sends_the_job_back(redis: Redis) -> None:
    g = TelegramSendGate(redis, TELEGRAM, bot=RateLimit(30), chat=None, group=None, floor_s=60.0, max_wait_s=0.2)
    assert (await g.check("n1", "7")).verdict is Verdict.ADMITTED
    assert (await g.admit("n2", "8")).verdict is Verdict.FLOOR


async def test_a_send_counts_in_its_windows_from_the_moment_its_answer_came_in(redis: Redis) -> None:
    g = gate(redis)
    admitted = await g.check("n1", "7")
    started = int(admitted.ticket.rsplit(":", 1)[1])
    await asyncio.sleep(0.5)  # the request on its way, the provider answering
    await g.finish(admitted.ticket, "7")
    for window in ("bot", "chat:7"):
        [(member, score)] = await redis.zrange(keys.send_gate_window(TELEGRAM, window), 0, -1, withscores=True)
        assert member.decode() == admitted.ticket
        assert score >= started + 500


async def test_the_hold_of_a_429_is_in_place_before_the_next_send_can_be_admitted(redis: Redis) -> None:
    g = gate(redis)
    first = await g.check("n1", "7")
    await g.finish(first.ticket, "7", hold_s=3.0)
    assert 2000 < await redis.pttl(QueueKeys(TELEGRAM).hold) <= 3000
    assert (await g.check("n2", "8")).verdict is Verdict.HELD


async def test_admit_waits_for_room_and_the_admitted_sends_are_a_window_apart(redis: Redis) -> None:
    g = gate(redis, chat="1/300ms")
    first = await g.admit("n1", "7")
    assert first.verdict is Verdict.ADMITTED
    await g.finish(first.ticket, "7")
    assert (await g.admit("n2", "7")).verdict is Verdict.ADMITTED
    # The bot's window (1 s) still holds both; the chat's has let go of the first.
    sends = await redis.zrange(keys.send_gate_window(TELEGRAM, "bot"), 0, -1, withscores=True)
    assert len(sends) == 2
    assert sends[1][1] - sends[0][1] >= 300


async def test_admit_gives_up_when_the_wait_is_longer_than_its_bound(redis: Redis) -> None:
    g = TelegramSendGate(redis, TELEGRAM, bot=RateLimit(30), chat=RateLimit(1, 60.0), group=None, max_wait_s=0.1)
    first = await g.admit("n1", "7")
    await g.finish(first.ticket, "7")
    busy = await g.admit("n2", "7")
    assert busy.verdict is Verdict.BUSY
    assert busy.wait_s > 0.1


class RecordingSender:
    def __init__(self, outcome: Outcome | None = None) -> None:
        self.sent: list[str] = []
        self.outcome = outcome or Outcome.delivered("1")

    async def send(self, notification: Notification) -> Outcome:
        self.sent.append(notification.id)
        return self.outcome

    async def close(self) -> None:
        return None


@pytest.fixture
async def idle_notify(redis_url: str, tmp_path: Path, providers: Providers) -> AsyncIterator[Notify]:
    """The service without workers: the test delivers with a Deliverer of its own."""
    async with running_notify(notify_settings(redis_url, tmp_path, providers), providers, workers=False) as notify:
        yield notify


def gated_deliverer(
    notify: Notify,
    sender: RecordingSender,
    redis: Redis,
    the_gate: TelegramSendGate | None = None,
    *,
    timeout_s: float = 3.0,
) -> Deliverer:
    return Deliverer(
        store=notify.app.core.store,
        senders={Channel.TELEGRAM: sender},
        policy=retry_policy(notify.settings, 5),
        timeout_s=timeout_s,
        gates={Channel.TELEGRAM: the_gate or gate(redis)},
    )


async def test_a_job_that_finds_the_channel_held_at_the_moment_of_sending_goes_back_unsent_without_an_attempt(
    idle_notify: Notify, redis: Redis
) -> None:
    notify = idle_notify  # short name for the steps below
    nid = await notify.send(channel=TELEGRAM_CHANNEL, recipient=notify_pb2.Recipient(telegram_chat_id="5"), body="hi")
    sender = RecordingSender()
    deliverer = gated_deliverer(notify, sender, redis)
    await redis.set(QueueKeys(TELEGRAM).hold, 1, px=60_000)
    with pytest.raises(Requeue):
        await deliverer.deliver(nid, 1)
    held = await notify.app.core.store.get(nid)
    assert sender.sent == []
    assert held.state is State.RETRYING
    assert held.attempts == []
    assert "retry_after" in held.last_error

    await redis.delete(QueueKeys(TELEGRAM).hold)
    assert (await deliverer.deliver(nid, 1))["state"] == "delivered"
    assert sender.sent == [nid]


async def test_a_429_holds_the_channel_through_the_gate_before_the_job_goes_back(
    idle_notify: Notify, redis: Redis
) -> None:
    notify = idle_notify  # short name for the steps below
    nid = await notify.send(channel=TELEGRAM_CHANNEL, recipient=notify_pb2.Recipient(telegram_chat_id="6"), body="hi")
    sender = RecordingSender(Outcome.rate_limited(30.0, "429: retry after 30"))
    deliverer = gated_deliverer(notify, sender, redis)
    with pytest.raises(Requeue):
        await deliverer.deliver(nid, 1)
    # No worker ran: the hold is the gate's, set on the 429 itself.
    assert 20_000 < await redis.pttl(QueueKeys(TELEGRAM).hold) <= 30_000
    assert (await gate(redis).check("other", "99")).verdict is Verdict.HELD


async def test_a_notification_in_flight_is_not_admitted_again_until_released(redis: Redis) -> None:
    g = gate(redis, chat="")
    await sent(g, "n1", "7")
    again = await g.check("n1", "7")
    assert again.verdict is Verdict.IN_FLIGHT
    assert 0 < again.wait_s <= g.in_flight_s
    await sent(g, "n2", "7")
    await g.release("n1")
    assert (await g.check("n1", "7")).verdict is Verdict.ADMITTED


class StalledSender(RecordingSender):
    """The first send hangs until released: a worker starved of CPU mid-send."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled, self.resume = asyncio.Event(), asyncio.Event()

    async def send(self, notification: Notification) -> Outcome:
        self.sent.append(notification.id)
        if len(self.sent) == 1:
            self.stalled.set()
            await self.resume.wait()
        return self.outcome


async def test_a_second_run_while_the_first_is_still_sending_goes_back_and_never_sends_twice(
    idle_notify: Notify, redis: Redis
) -> None:
    notify = idle_notify  # short name for the steps below
    nid = await notify.send(channel=TELEGRAM_CHANNEL, recipient=notify_pb2.Recipient(telegram_chat_id="8"), body="hi")
    sender = StalledSender()
    # No chat limit: only the in-flight mark can keep the second run from sending.
    first = asyncio.create_task(gated_deliverer(notify, sender, redis, gate(redis, chat="")).deliver(nid, 1))
    await asyncio.wait_for(sender.stalled.wait(), 20)
    second_gate = gate(redis, chat="")
    second_gate.max_wait_s = 0.0  # the lease lapsed and another worker runs the job meanwhile
    second = gated_deliverer(notify, sender, redis, second_gate)
    with pytest.raises(Requeue):
        await second.deliver(nid, 2)
    sender.resume.set()
    assert (await asyncio.wait_for(first, 20))["state"] == "delivered"
    assert (await notify.app.core.store.get(nid)).state is State.DELIVERED
    assert (await second.deliver(nid, 2)) == {"state": "delivered", "already": True}
    assert sender.sent == [nid]


async def test_an_answer_slower_than_the_floor_keeps_the_next_send_waiting_and_its_429_holds_it(
    idle_notify: Notify, redis: Redis
) -> None:
    notify = idle_notify  # short name for the steps below
    nid = await notify.send(channel=TELEGRAM_CHANNEL, recipient=notify_pb2.Recipient(telegram_chat_id="9"), body="hi")
    sender = StalledSender()
    sender.outcome = Outcome.rate_limited(30.0, "429: retry after 30")
    floor_s = 0.6
    slow_gate = TelegramSendGate(redis, TELEGRAM, bot=RateLimit(30), chat=None, group=None, floor_s=floor_s)
    # The provider timeout, not the floor, bounds how long a live worker's send keeps the floor.
    first = asyncio.create_task(gated_deliverer(notify, sender, redis, slow_gate, timeout_s=60).deliver(nid, 1))
    await asyncio.wait_for(sender.stalled.wait(), 20)
    other_worker = TelegramSendGate(
        redis, TELEGRAM, bot=RateLimit(30), chat=None, group=None, floor_s=floor_s, max_wait_s=60
    )
    waiting = asyncio.create_task(other_worker.admit("n-next", "10"))
    await asyncio.sleep(floor_s * 3)  # the answer is late: the floor would have lapsed twice over
    assert not waiting.done()
    sender.resume.set()  # ... and is a 429
    with pytest.raises(Requeue):
        await asyncio.wait_for(first, 20)
    assert (await asyncio.wait_for(waiting, 20)).verdict is Verdict.HELD
