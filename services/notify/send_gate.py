"""The Telegram send gate: the Bot API's limits checked again right before each HTTP call.

The queue layer paces *claims* (30/s for the bot, 1/s per chat, 20/min per group chat) and holds
every claim during a provider's ``retry_after``. The Bot API counts *arrivals*: between a claim
and its HTTP request a worker reads and writes the database, and on a loaded machine that gap
varies by hundreds of milliseconds, so two sends claimed a second apart can arrive closer than
that, and a job claimed just before a 429 can reach the provider during the pause. The gate
closes both gaps: one Lua call, right before the request, that

* refuses while the queue's ``hold`` key is set (a ``retry_after`` in force), and
* refuses while another worker is sending the same notification (a job whose lease lapsed while
  its worker was starved of CPU is claimed again; without this both would reach the provider),
* admits the send only if every window it belongs to (the bot, its chat, its group chat) has
  room, recording the send start in each; otherwise it says how long until the fullest frees.

An admitted send marks its notification in flight (``keys.send_in_flight``) until ``release``,
called once an outcome other than delivered is stored (the next run may send), or for
``in_flight_s``: a delivered notification keeps the mark, so a run that read it just before it
was delivered cannot send it again; a worker killed mid-send never releases, and its job is sent
again once the mark lapses (the documented at-least-once window).

A 429 sets the hold through the gate the moment its answer arrives (``hold``), before the job's
outcome is recorded.

Windows are sliding logs in Redis (``keys.send_gate_window``) read with the server's ``TIME``,
so every worker replica shares them and one clock. What is left between the gate and the
provider is the event loop's delay before the request leaves, a few milliseconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from redis.asyncio import Redis

from runtime.queue.keys import QueueKeys
from runtime.queue.spec import RateLimit
from services.notify import keys

# KEYS: hold, the notification's in-flight marker, then one window per limit.  ARGV: notification
# id, in-flight ms, then (max, period ms) per window.  -> {0, 0} admitted (recorded in every window,
# the marker set); {1, ms} held for ms; {2, ms} a window is full for ms more; {3, ms} another
# worker is sending this notification (its marker lapses in ms).
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('PTTL', KEYS[1])
if held > 0 then return {1, held} end
local sending = redis.call('PTTL', KEYS[2])
if sending > 0 then return {3, sending} end
local wait = 0
for i = 3, #KEYS do
  local max, period = tonumber(ARGV[i * 2 - 3]), tonumber(ARGV[i * 2 - 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
  if redis.call('ZCARD', KEYS[i]) >= max then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + period - now)
  end
end
if wait > 0 then return {2, wait} end
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1] .. ':' .. now)
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[i * 2 - 2]))
end
redis.call('SET', KEYS[2], 1, 'PX', tonumber(ARGV[2]))
return {0, 0}
"""


# KEYS: hold.  ARGV: ms.  Hold the queue for ms unless a longer hold is already in place.
HOLD = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], 1, 'PX', ms) end
return 1
"""


class Verdict(Enum):
    ADMITTED = "admitted"
    HELD = "held"
    BUSY = "busy"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    wait_s: float = 0.0
    """HELD: what is left of the hold; BUSY: until the fullest window has room again;
    IN_FLIGHT: until another worker's send of the same notification is taken for lost."""


def _widened(limit: RateLimit | None, margin_s: float) -> RateLimit | None:
    return None if limit is None else RateLimit(limit.max_jobs, limit.period_s + margin_s)


class SendGate(Protocol):
    async def admit(self, notification_id: str, recipient: str) -> Admission:
        """Whether a send to ``recipient`` may start now (and if so, it is counted)."""
        ...

    async def hold(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` (a provider's retry-after), starting now."""
        ...

    async def release(self, notification_id: str) -> None:
        """The admitted send of ``notification_id`` was not delivered (its outcome is recorded):
        the next run may send."""
        ...


class TelegramSendGate:
    """Admits one Telegram send at a time under the bot, chat and group-chat limits.

    ``admit`` waits (up to ``max_wait_s``) for a full window rather than giving the job back:
    claims are paced by the same limits, so the wait is the claim-to-send jitter, short.
    ``margin_s`` lengthens the chat and group windows (``bot_margin_s`` the bot's), so sends that
    leave the gate a window apart still arrive at least a window apart when the first was
    delayed on its way.
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
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(ADMIT)
        self._hold_script = redis.register_script(HOLD)
        self._queue = queue
        self._hold = QueueKeys(queue).hold
        self._bot = _widened(bot, bot_margin_s) or bot
        self._chat, self._group = _widened(chat, margin_s), _widened(group, margin_s)
        self.max_wait_s = max_wait_s
        self.in_flight_s = in_flight_s

    def _windows(self, chat: str) -> list[tuple[str, RateLimit]]:
        windows = [(keys.send_gate_window(self._queue, "bot"), self._bot)]
        if self._chat is not None:
            windows.append((keys.send_gate_window(self._queue, f"chat:{chat}"), self._chat))
        if self._group is not None and chat.startswith("-"):
            windows.append((keys.send_gate_window(self._queue, f"group:{chat}"), self._group))
        return windows

    async def check(self, notification_id: str, chat: str) -> Admission:
        """One look: admitted (and recorded), held, busy or in flight, in a single Redis call."""
        windows = self._windows(chat)
        args: list[str | int] = [notification_id, max(round(self.in_flight_s * 1000), 1)]
        for _, limit in windows:
            args += [limit.max_jobs, limit.period_ms]
        sending = keys.send_in_flight(self._queue, notification_id)
        code, ms = await self._script(keys=[self._hold, sending, *(key for key, _ in windows)], args=args)
        verdict = (Verdict.ADMITTED, Verdict.HELD, Verdict.BUSY, Verdict.IN_FLIGHT)[int(code)]
        return Admission(verdict, int(ms) / 1000)

    async def release(self, notification_id: str) -> None:
        """Let the next run of this notification be admitted (this one's outcome is stored)."""
        await self._redis.delete(keys.send_in_flight(self._queue, notification_id))

    async def hold(self, seconds: float) -> None:
        """Hold the queue (its ``hold`` key, which every claim and this gate honour) at once: the
        429's worker still has to record it before the queue layer would set the same hold, and
        other workers' sends must not reach the provider meanwhile."""
        await self._hold_script(keys=[self._hold], args=[max(round(seconds * 1000), 1)])

    async def admit(self, notification_id: str, recipient: str) -> Admission:
        """Admitted, or why not: held (a ``retry_after`` in force), still busy after waiting for
        room in a window, or still in flight elsewhere; waits ``max_wait_s`` at most."""
        waited = 0.0
        while True:
            admission = await self.check(notification_id, recipient)
            if admission.verdict in (Verdict.ADMITTED, Verdict.HELD):
                return admission
            if admission.verdict is Verdict.BUSY and waited + admission.wait_s > self.max_wait_s:
                return admission  # no room within the bound: give the job back at once
            pause = min(admission.wait_s, self.max_wait_s - waited)
            if pause <= 0:
                return admission
            await asyncio.sleep(pause)
            waited += pause
