"""A local Telegram Bot API server: ``sendMessage`` with Telegram's limits enforced.

Limits (each a sliding window over arrival times, shortened by ``tolerance_s`` for the network
jitter between a sender's clock and ours): ``rate_per_second`` messages per second for the bot,
one per second per chat, ``group_per_minute`` per minute per group chat (negative id). A send
over a limit is answered 429 with ``retry_after`` and the whole bot is paused that long, as
Telegram does; sends that arrive during a pause are counted (``sentDuringPause``) and refused.
``blocked`` chats get 403 "bot was blocked by the user", ``unknown`` ones 400 "chat not found",
and ``flood_ratio`` of sends get a 429 with ``flood_retry_after`` (a drill). Between
:meth:`BotApiState.hold_answers` and :meth:`BotApiState.release_answers` each ``sendMessage``
waits before it is judged (``holding`` counts them): a provider slow to answer, on cue, so a test
can read what a sender shows while its send is on the wire.

``POST /_control`` changes those settings (JSON), ``GET /_log`` returns what was accepted and
the counters, ``POST /_reset`` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class BotApiState:
    token: str
    rate_per_second: int = 30
    chat_per_second: int = 1
    group_per_minute: int = 20
    tolerance_s: float = 0.05
    blocked: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    flood_ratio: float = 0.0
    flood_retry_after: int = 3
    accepted: list[dict[str, Any]] = field(default_factory=list)
    too_many: int = 0
    limit_violations: int = 0
    violations_by_limit: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Which window refused: ``bot``, ``chat`` or ``group`` (the fullest when several)."""
    sent_during_pause: int = 0
    paused_until: float = 0.0
    pauses: list[tuple[float, float]] = field(default_factory=list)
    _bot: deque[float] = field(default_factory=deque)
    _chats: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _groups: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    """What the windows and pauses are measured by (a test steps it by hand)."""
    holding: int = 0
    """Sends waiting for :meth:`release_answers`."""
    _answering: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._answering.set()

    def hold_answers(self) -> None:
        """Sends from now on wait, unanswered, until :meth:`release_answers`."""
        self._answering.clear()

    def release_answers(self) -> None:
        self._answering.set()

    async def answer_when_released(self) -> None:
        if self._answering.is_set():
            return
        self.holding += 1
        try:
            await self._answering.wait()
        finally:
            self.holding -= 1

    def reset(self) -> None:
        self.accepted.clear()
        self.too_many = self.limit_violations = self.sent_during_pause = 0
        self.violations_by_limit.clear()
        self.paused_until = 0.0
        self.pauses.clear()
        self._bot.clear()
        self._chats.clear()
        self._groups.clear()

    def _wait_needed(self, window: deque[float], limit: int, period: float, now: float) -> float:
        while window and window[0] <= now - (period - self.tolerance_s):
            window.popleft()
        return window[0] + period - self.tolerance_s - now if len(window) >= limit else 0.0

    def send(self, chat: str, text: str) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        if now < self.paused_until:
            self.sent_during_pause += 1
            return self._too_many(math.ceil(self.paused_until - now), pause=False)
        if chat in self.blocked:
            return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        if chat in self.unknown:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        if self.flood_ratio and self.rng.random() < self.flood_ratio:
            return self._too_many(self.flood_retry_after)
        windows = {
            "bot": (self._bot, self.rate_per_second, 1.0),
            "chat": (self._chats[chat], self.chat_per_second, 1.0),
        }
        if chat.startswith("-"):
            windows["group"] = (self._groups[chat], self.group_per_minute, 60.0)
        waits = {name: self._wait_needed(w, limit, period, now) for name, (w, limit, period) in windows.items()}
        fullest = max(waits, key=lambda name: waits[name])
        if waits[fullest] > 0:
            self.limit_violations += 1
            self.violations_by_limit[fullest] += 1
            return self._too_many(max(math.ceil(waits[fullest]), 1))
        for window, _, _ in windows.values():
            window.append(now)
        message_id = len(self.accepted) + 1
        self.accepted.append({"chat_id": chat, "text": text, "message_id": message_id, "at": time.time()})
        return 200, {"ok": True, "result": {"message_id": message_id, "chat": {"id": chat}, "text": text}}

    def _too_many(self, retry_after: int, *, pause: bool = True) -> tuple[int, dict[str, Any]]:
        self.too_many += 1
        if pause:
            self.paused_until = self.clock() + retry_after
            self.pauses.append((time.time(), float(retry_after)))
        return 429, {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }

    def log(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "tooMany": self.too_many,
            "limitViolations": self.limit_violations,
            "violationsByLimit": dict(self.violations_by_limit),
            "sentDuringPause": self.sent_during_pause,
            "pauses": self.pauses,
        }


def create_app(state: BotApiState) -> web.Application:
    async def send_message(request: web.Request) -> web.Response:
        if request.match_info["token"] != state.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        body: Any = await request.json() if request.content_type == "application/json" else dict(await request.post())
        chat, text = str(body.get("chat_id", "")), str(body.get("text", ""))
        if not chat or not text:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}, status=400
            )
        if len(text) > 4096:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}, status=400
            )
        await state.answer_when_released()
        status, payload = state.send(chat, text)
        return web.json_response(payload, status=status)

    async def control(request: web.Request) -> web.Response:
        changes = await request.json()
        for name in ("rate_per_second", "chat_per_second", "group_per_minute", "flood_retry_after"):
            if name in changes:
                setattr(state, name, int(changes[name]))
        for name in ("tolerance_s", "flood_ratio"):
            if name in changes:
                setattr(state, name, float(changes[name]))
        for name in ("blocked", "unknown"):
            if name in changes:
                setattr(state, name, {str(c) for c in changes[name]})
        return web.json_response({"ok": True})

    async def log(request: web.Request) -> web.Response:
        return web.json_response(state.log())

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", send_message)
    app.router.add_post("/_control", control)
    app.router.add_get("/_log", log)
    app.router.add_post("/_reset", reset)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="local Telegram Bot API server")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="local-bot-token")
    args = parser.parse_args()
    web.run_app(create_app(BotApiState(args.token)), host="127.0.0.1", port=args.port, access_log=None)


if __name__ == "__main__":
    main()
