"""The Telegram send gate: one send on the wire at a time, each admitted under the Bot API's limits.

The queue layer paces *claims* (30/s for the bot, 1/s per chat, 20/min per group chat) and holds
every claim during a provider's ``retry_after``. The Bot API counts *arrivals*, and between a
claim and its arrival a worker reads and writes the database and waits for the CPU: on a loaded
machine that gap varies by tens to hundreds of milliseconds. The gate makes the limits and the
pauses hold whatever that delay is:

* **One send at a time, bot-wide** (the *floor*, ``keys.send_gate_floor``): a send is admitted
  only while no other is on the wire, and the floor is let go only once its answer is in, a 429's
  hold already set. So no request can be on its way when a 429 pauses the bot: the next send is
  admitted after the hold is in place and refused by it. The cost is throughput: at most one send
  per round trip (a few ms on loopback; 30/s needs a round trip under 33 ms).
* **Windows counted from each send's answer**: an admitted send is recorded in every window it
  belongs to (the bot, its chat, its group chat) and, when its answer comes back, moved to that
  moment (``finish``). The provider saw it no later than that, and the next send arrives no earlier
  than its admission, so sends admitted a window apart *arrive* at least a window apart.
* **A held channel admits nothing** (the queue's ``hold`` key, a ``retry_after`` in force).
* **A notification in flight is not admitted again** (``keys.send_in_flight``): a job whose
  lease lapsed while its worker was starved of CPU is claimed again; without the mark both runs
  would reach the provider. The mark stays until ``release`` (called once an outcome other than
  delivered is stored) or for ``in_flight_s``: a delivered notification keeps it, so a run that
  read it just before it was delivered cannot send it again.

While a send waits for its answer its worker keeps the floor (``on_the_wire``: renewed every
third of ``floor_s``), so an answer slower than ``floor_s`` still keeps the next send waiting; the
deliverer cuts a send off at the provider timeout, which bounds that wait. A worker killed
mid-send renews nothing: its floor lapses after ``floor_s``, and its job is sent again once the
in-flight mark lapses (the documented at-least-once window). Everything lives in
Redis and is read with the server's ``TIME``, so every worker replica shares one clock and one
floor. Waiting for the floor is a ``BLPOP`` on a doorbell list rung by each ``finish``, one
waiter per worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.logging import get_logger
from runtime.queue.keys import QueueKeys
from runtime.queue.spec import RateLimit
from services.notify import keys

# KEYS: hold, the notification's in-flight mark, floor, then the bot's window and the others.
# ARGV: notification id, in-flight ms, floor ms, then (max, period ms) per window.
# -> {0, ms} admitted at ms (recorded in every window, the mark and the floor set); {1, ms} held
# for ms; {2, ms} the bot's window is full for ms more; {5, ms} the chat's or group's is; {3, ms}
# another worker is sending this notification; {4, ms} another send holds the floor for ms (or more,
# if its worker renews it).
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('PTTL', KEYS[1])
if held > 0 then return {1, held} end
local sending = redis.call('PTTL', KEYS[2])
if sending > 0 then return {3, sending} end
local floor = redis.call('PTTL', KEYS[3])
if floor > 0 then return {4, floor} end
local code, wait = 0, 0
for i = 4, #KEYS do
  local max, period = tonumber(ARGV[i * 2 - 4]), tonumber(ARGV[i * 2 - 3])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
  if redis.call('ZCARD', KEYS[i]) >= max then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + period - now
    if w > wait then wait = w; code = (i == 4) and 2 or 5 end
  end
end
if wait > 0 then return {code, wait} end
local member = ARGV[1] .. ':' .. now
for i = 4, #KEYS do
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[i * 2 - 3]) + tonumber(ARGV[3]))
end
redis.call('SET', KEYS[2], 1, 'PX', tonumber(ARGV[2]))
redis.call('SET', KEYS[3], member, 'PX', tonumber(ARGV[3]))
return {0, now}
"""

# KEYS: hold, floor, doorbell, then the windows.  ARGV: member, hold ms (0: none), then the
# windows' periods.  The hold first, then each window's entry moved to now, then the floor let
# go (if still this send's) and the doorbell rung.
FINISH = """
local hold = tonumber(ARGV[2])
if hold > 0 and redis.call('PTTL', KEYS[1]) < hold then redis.call('SET', KEYS[1], 1, 'PX', hold) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 4, #KEYS do
  if redis.call('ZSCORE', KEYS[i], ARGV[1]) then
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[i - 1]))
  end
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('LPUSH', KEYS[3], 1)
redis.call('LTRIM', KEYS[3], 0, 0)
return now
"""

# KEYS: floor.  ARGV: the send's ticket, floor ms.  The floor lengthened if it is still this send's.
KEEP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return 0
"""

log = get_logger("notify.send_gate")

DOORBELL_WAIT_S = 0.1
"""Longest wait on the doorbell before looking again (a floor whose holder was killed lapses)."""


class Verdict(Enum):
    ADMITTED = "admitted"
    HELD = "held"
    BUSY = "busy"
    IN_FLIGHT = "in_flight"
    FLOOR = "floor"


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    wait_s: float = 0.0
    """HELD: what is left of the hold; BUSY: until the fullest window has room again;
    IN_FLIGHT: until another worker's send of the same notification is taken for lost;
    FLOOR: until another send's floor lapses, unless its worker renews it."""
    ticket: str = ""
    """ADMITTED: what ``finish`` is given once the provider answered."""
    bot_window: bool = False
    """BUSY: the bot-wide window is the full one (nobody can send before then)."""


def _widened(limit: RateLimit | None, margin_s: float) -> RateLimit | None:
    return None if limit is None else RateLimit(limit.max_jobs, limit.period_s + margin_s)


class SendGate(Protocol):
    async def admit(self, notification_id: str, recipient: str) -> Admission:
        """Whether a send to ``recipient`` may start now (and if so, it is counted and holds the
        floor until ``finish``)."""
        ...

    def on_the_wire(self, ticket: str) -> AbstractAsyncContextManager[None]:
        """Around the provider call of an admitted send: its floor is kept until the block ends
        (the answer is in, or the call was cut off), however long that takes."""
        ...

    async def finish(self, ticket: str, recipient: str, *, hold_s: float = 0.0) -> None:
        """The admitted send's answer is in: ``hold_s`` > 0 holds the channel first (a 429's
        ``retry_after``), then the send counts from now and the next may start."""
        ...

    async def release(self, notification_id: str) -> None:
        """The admitted send of ``notification_id`` was not delivered (its outcome is recorded):
        the next run may send."""
        ...


class TelegramSendGate:
    """Admits one Telegram send at a time under the bot, chat and group-chat limits.

    ``admit`` waits (up to ``max_wait_s``) for the floor or for room in a full window rather than
    giving the job back: claims are paced by the same limits, so the wait is short. ``margin_s``
    lengthens the chat and group windows (``bot_margin_s`` the bot's), for a provider whose clock
    runs faster than Redis's. ``floor_s`` is how long a killed worker's send keeps the others
    waiting (a live one keeps its floor while on the wire: ``on_the_wire``).
    """

    def __init__(
        self,
        redis: Redis,
        queue: str,
        *,
        bot: RateLimit,
        chat: RateLimit | None,
        group: RateLimit | None,
        margin_s: float = 0.0,
        bot_margin_s: float = 0.0,
        max_wait_s: float = 2.0,
        in_flight_s: float = 30.0,
        floor_s: float = 2.0,
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(ADMIT)
        self._finish_script = redis.register_script(FINISH)
        self._keep_script = redis.register_script(KEEP)
        self._queue = queue
        self._hold = QueueKeys(queue).hold
        self._floor = keys.send_gate_floor(queue)
        self._doorbell = keys.send_gate_doorbell(queue)
        self._bot = _widened(bot, bot_margin_s) or bot
        self._chat, self._group = _widened(chat, margin_s), _widened(group, margin_s)
        self.max_wait_s = max_wait_s
        self.in_flight_s = in_flight_s
        self.floor_s = floor_s
        self._turn = asyncio.Lock()  # one contender for the floor per process

    def _windows(self, chat: str) -> list[tuple[str, RateLimit]]:
        windows = [(keys.send_gate_window(self._queue, "bot"), self._bot)]
        if self._chat is not None:
            windows.append((keys.send_gate_window(self._queue, f"chat:{chat}"), self._chat))
        if self._group is not None and chat.startswith("-"):
            windows.append((keys.send_gate_window(self._queue, f"group:{chat}"), self._group))
        return windows

    async def check(self, notification_id: str, chat: str) -> Admission:
        """One look: admitted (recorded, holding the floor), held, busy, in flight or the floor
        taken, in a single Redis call."""
        windows = self._windows(chat)
        args: list[str | int] = [notification_id, _ms(self.in_flight_s), _ms(self.floor_s)]
        for _, limit in windows:
            args += [limit.max_jobs, limit.period_ms]
        sending = keys.send_in_flight(self._queue, notification_id)
        code, ms = await self._script(keys=[self._hold, sending, self._floor, *(key for key, _ in windows)], args=args)
        code, ms = int(code), int(ms)
        if code == 0:
            return Admission(Verdict.ADMITTED, ticket=f"{notification_id}:{ms}")
        verdict = {1: Verdict.HELD, 2: Verdict.BUSY, 3: Verdict.IN_FLIGHT, 4: Verdict.FLOOR, 5: Verdict.BUSY}[code]
        return Admission(verdict, ms / 1000, bot_window=code == 2)

    async def finish(self, ticket: str, recipient: str, *, hold_s: float = 0.0) -> None:
        windows = self._windows(recipient)
        args: list[str | int] = [ticket, _ms(hold_s) if hold_s > 0 else 0, *(limit.period_ms for _, limit in windows)]
        await self._finish_script(
            keys=[self._hold, self._floor, self._doorbell, *(key for key, _ in windows)], args=args
        )

    @contextlib.asynccontextmanager
    async def on_the_wire(self, ticket: str) -> AsyncIterator[None]:
        keeper = asyncio.create_task(self._keep_floor(ticket))
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])  # never raises the keeper's CancelledError as ours

    async def _keep_floor(self, ticket: str) -> None:
        """Renew the floor every third of ``floor_s`` while it is still this send's; a send that
        answers within the first third (nearly all) costs no Redis call."""
        try:
            while True:
                await asyncio.sleep(self.floor_s / 3)
                if not await self._keep_script(keys=[self._floor], args=[ticket, _ms(self.floor_s)]):
                    log.warning("send gate floor lapsed while a send was on the wire", ticket=ticket)
                    return
        except (RedisError, OSError) as exc:  # the floor lapses on its own: the others wait less
            log.warning("send gate floor not renewed", ticket=ticket, error=str(exc))

    async def release(self, notification_id: str) -> None:
        """Let the next run of this notification be admitted (this one's outcome is stored)."""
        await self._redis.delete(keys.send_in_flight(self._queue, notification_id))

    async def admit(self, notification_id: str, recipient: str) -> Admission:
        """Admitted (holding the floor: ``finish`` must follow), or why not: held (a
        ``retry_after`` in force), still busy or the floor still taken after ``max_wait_s``, or
        in flight elsewhere."""
        deadline = time.monotonic() + self.max_wait_s
        while True:
            async with self._turn:
                admission = await self._contend(notification_id, recipient, deadline)
            if admission.verdict is not Verdict.ADMITTED and admission.verdict is not Verdict.FLOOR:
                await self._pass_doorbell_on()  # the floor is free: another process may be waiting
            if admission.verdict is not Verdict.BUSY or admission.bot_window:
                return admission
            # This chat's window is full: wait outside the turn, so sends to other chats go on.
            left = deadline - time.monotonic()
            if admission.wait_s > left:
                return admission
            await asyncio.sleep(admission.wait_s)

    async def _contend(self, notification_id: str, recipient: str, deadline: float) -> Admission:
        """The process's turn: wait for the floor and for room in the bot's window (nobody can
        send before either), until admitted, refused for another reason, or out of time."""
        while True:
            admission = await self.check(notification_id, recipient)
            left = deadline - time.monotonic()
            if admission.verdict is Verdict.FLOOR and left > 0:
                await self._wait_for_doorbell(min(admission.wait_s, DOORBELL_WAIT_S, left))
            elif admission.verdict is Verdict.BUSY and admission.bot_window and admission.wait_s <= left:
                await asyncio.sleep(admission.wait_s)
            else:
                return admission

    async def _wait_for_doorbell(self, seconds: float) -> None:
        await self._redis.execute_command("BLPOP", self._doorbell, f"{max(seconds, 0.001):.3f}")

    async def _pass_doorbell_on(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lpush(self._doorbell, 1)
            pipe.ltrim(self._doorbell, 0, 0)
            await pipe.execute()


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 1)
