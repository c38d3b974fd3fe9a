"""Notify benchmarks: Telegram at the Bot API's limit, the 429 drill, email/push rates, in-app
latency, and a worker killed with SIGKILL mid-run.

Everything is real and local: Redis, ``python -m services.notify``, the gateway, two worker
processes per queue, and the local providers of ``services.notify.local`` (the Bot API server
enforces 30/s, 1/s per chat, 20/min per group and counts 429s; its log is the judge of what was
lost or duplicated). ``NOTIFY_BENCH_SCALE`` (default 1.0) scales the message counts down for a
quick check (``0.2``: a fifth).

    python -m bench.notify_bench        # prints the rows as JSON
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devsupport.auth import AUTH_HEADERS
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from services.notify.local.http import RunningServer, start
from services.notify.local.push_service import PushState
from services.notify.local.push_service import create_app as push_app
from services.notify.local.smtp_sink import SmtpSink
from services.notify.local.telegram_api import BotApiState
from services.notify.local.telegram_api import create_app as bot_app
from services.notify.vapid import generate_private_key

SCALE = float(os.environ.get("NOTIFY_BENCH_SCALE", "1.0"))
TOKEN = "42:bench"


def row(name: str, value: float, unit: str, target: str, met: bool) -> dict[str, Any]:
    result = {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": met}
    print(json.dumps(result), file=sys.stderr, flush=True)  # progress: each figure as it is measured
    return result


@dataclass
class Suite:
    gateway: str
    bot: BotApiState
    push: PushState
    push_server: RunningServer
    smtp: SmtpSink
    workers: dict[str, list[ServiceProcess]]
    env: dict[str, str]


@asynccontextmanager
async def suite(data_dir: Path) -> AsyncIterator[Suite]:
    redis = RedisServer()
    redis.start()
    bot, push = BotApiState(TOKEN), PushState()
    bot_server, push_server = await start(bot_app(bot)), await start(push_app(push))
    push.origin = push_server.url
    smtp = SmtpSink(maildir=None).start()
    notify_addr, gateway_port = f"127.0.0.1:{free_port()}", free_port()
    env = {
        "REDIS_URL": redis.url,
        "DATA_DIR": str(data_dir),
        "NOTIFY_ADDR": notify_addr,
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_STATUS_MIRROR": "false",
        "LOG_LEVEL": "WARNING",
        "METRICS_PORT": "-1",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": bot_server.url,
        "VAPID_PRIVATE_KEY": generate_private_key(),
        "VAPID_SUBJECT": "mailto:bench@switchboard.example",
        "NOTIFY_LEASE_S": "2",
        "RPC_TIMEOUT_SECONDS": "60",
        # One bench process stands for many clients: the per-client caps would throttle it.
        "GATEWAY_MAX_CONNECTIONS_PER_CLIENT": "0",
        "GATEWAY_MAX_STREAMS_PER_CLIENT": "0",
    }
    service = ServiceProcess.module("services.notify", env=env).start()
    gateway = ServiceProcess.module("gateway", env=env).start()
    workers = {
        "telegram": [ServiceProcess.module("services.notify.worker", "telegram", env=env).start() for _ in range(2)],
        "notifications": [ServiceProcess.module("services.notify.worker", env=env).start() for _ in range(2)],
    }
    try:
        service.wait_serving(notify_addr, "switchboard.notify.v1.NotifyService", timeout=120)
        gateway.wait_http(f"http://127.0.0.1:{gateway_port}/healthz", timeout=120)
        yield Suite(f"http://127.0.0.1:{gateway_port}", bot, push, push_server, smtp, workers, env)
    finally:
        for process in [service, gateway, *workers["telegram"], *workers["notifications"]]:
            process.close()
        await bot_server.stop()
        await push_server.stop()
        smtp.stop()
        redis.close()


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    response = await client.post("/api/notifications", json=body)
    response.raise_for_status()
    ids: list[str] = response.json()["data"]["notificationIds"]
    return ids


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def telegram_run(s: Suite, tag: str, *, kill_after: int = 0) -> dict[str, Any]:
    """Private chats x 3 plus 2 group chats x 40, each text unique; returns the provider's view."""
    chats, groups = max(int(500 * SCALE), 10), ["-1001", "-1002"]
    per_group = max(int(40 * SCALE), 5)
    s.bot.reset()
    sent: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=s.gateway, timeout=60, headers=AUTH_HEADERS) as client:
        for round_ in range(3):
            for first in range(0, chats, 100):
                to = [str(1000 + c) for c in range(first, min(first + 100, chats))]
                sent += [(chat, f"{tag} #{round_}") for chat in to]
                await post(client, {"channel": "telegram", "to": to, "text": f"{tag} #{round_}"})
        for group in groups:
            for i in range(per_group):
                sent.append((group, f"{tag} g{i}"))
                await post(client, {"channel": "telegram", "to": group, "text": f"{tag} g{i}"})
    killed_in_flight = 0
    deadline = time.monotonic() + 120 + len(sent) / 20
    while time.monotonic() < deadline:
        got = {(m["chat_id"], m["text"]) for m in s.bot.accepted}
        if kill_after and len(s.bot.accepted) >= kill_after and killed_in_flight == 0:
            s.workers["telegram"][0].send_signal(signal.SIGKILL)
            killed_in_flight = 1
        if set(sent) <= got:
            break
        await asyncio.sleep(0.25)
    texts = Counter((m["chat_id"], m["text"]) for m in s.bot.accepted)
    times = [m["at"] for m in s.bot.accepted]
    per_chat: dict[str, list[float]] = defaultdict(list)
    for m in s.bot.accepted:
        per_chat[m["chat_id"]].append(m["at"])
    private = sorted(m["at"] for m in s.bot.accepted if not m["chat_id"].startswith("-"))
    busy = (private[-1] - private[0]) if len(private) > 1 else 1.0
    return {
        "sent": len(sent),
        "rate": (len(private) - 1) / busy if busy > 0 else 0.0,
        "average": len(times) / (max(times) - min(times)) if len(times) > 1 else 0.0,
        "too_many": s.bot.too_many,
        "lost": len(set(sent) - set(texts)),
        "duplicated": sum(n - 1 for n in texts.values() if n > 1),
        "chat_max_1s": max((max_in_window(t, 1.0) for c, t in per_chat.items() if not c.startswith("-")), default=0),
        "group_max_60s": max((max_in_window(t, 60.0) for c, t in per_chat.items() if c.startswith("-")), default=0),
        "during_pause": s.bot.sent_during_pause,
        "by_limit": dict(s.bot.violations_by_limit),
    }


async def rate_of(s: Suite, channel: str, to: str, count: int, received: Any) -> float:
    async with httpx.AsyncClient(base_url=s.gateway, timeout=60, headers=AUTH_HEADERS) as client:
        started = time.monotonic()
        for first in range(0, count, 50):
            n = min(50, count - first)
            body = {"channel": channel, "to": [to] * n, "subject": "bench", "text": "bench message"}
            if channel == "email":
                body["to"] = [f"u{first + i}@bench.example" for i in range(n)]
            await post(client, body)
        deadline = time.monotonic() + 60 + count / 50
        while time.monotonic() < deadline:
            if received() >= count:
                break
            await asyncio.sleep(0.05)
    return received() / (time.monotonic() - started)


async def in_app_p99(s: Suite, count: int) -> float:
    latencies: list[float] = []
    async with (
        httpx.AsyncClient(base_url=s.gateway, timeout=60, headers=AUTH_HEADERS) as client,
        client.stream("GET", "/api/users/bench-user/inbox/stream") as stream,
    ):
        lines = stream.aiter_lines()
        while not (await anext(lines)).startswith("event: ready"):
            pass
        await asyncio.sleep(0.5)  # the watch subscribes after "ready" is sent
        for i in range(count):
            started = time.perf_counter()
            await post(client, {"channel": "database", "to": "bench-user", "text": f"m{i}"})
            async for line in lines:
                if line.startswith("data:") and f'"m{i}"' in line:
                    break
            latencies.append((time.perf_counter() - started) * 1000)
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else latencies[0]


async def measure() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
        async with suite(Path(tmp)) as s:
            one = await telegram_run(s, "run1")
            rows += [
                row(
                    "notify telegram sustained at the limit (noisy)",
                    one["rate"],
                    "msg/s",
                    ">= 29.5",
                    one["rate"] >= 29.5,
                ),
                row("notify telegram 429s", one["too_many"], "count", "== 0", one["too_many"] == 0),
                *(
                    row(f"notify telegram 429s over the {limit} limit", n, "count", "info", True)
                    for limit, n in sorted(one["by_limit"].items())
                ),
                row("notify telegram lost", one["lost"], "count", "== 0", one["lost"] == 0),
                row("notify telegram duplicated", one["duplicated"], "count", "== 0", one["duplicated"] == 0),
                row("notify telegram max per chat in 1 s", one["chat_max_1s"], "msg", "<= 1", one["chat_max_1s"] <= 1),
                row(
                    "notify telegram max per group in 60 s",
                    one["group_max_60s"],
                    "msg",
                    "<= 20",
                    one["group_max_60s"] <= 20,
                ),
            ]
            s.bot.flood_ratio, s.bot.flood_retry_after = 0.01, 3
            drill = await telegram_run(s, "drill")
            s.bot.flood_ratio = 0.0
            rows += [
                row("notify 429 drill lost", drill["lost"], "count", "== 0", drill["lost"] == 0),
                row("notify 429 drill duplicated", drill["duplicated"], "count", "== 0", drill["duplicated"] == 0),
                row(
                    "notify 429 drill sends during a pause",
                    drill["during_pause"],
                    "count",
                    "== 0",
                    drill["during_pause"] == 0,
                ),
            ]
            emails = max(int(2000 * SCALE), 100)
            email_rate = await rate_of(s, "email", "", emails, lambda: len(s.smtp.received))
            rows.append(
                row("notify email to aiosmtpd, 2 workers (noisy)", email_rate, "msg/s", ">= 300", email_rate >= 300)
            )
            async with httpx.AsyncClient() as http:
                subscription = (await http.post(f"{s.push_server.url}/subscriptions")).json()
                await http.post(
                    f"{s.gateway}/api/push/subscriptions",
                    headers=AUTH_HEADERS,
                    json={"userId": "bench-push", "endpoint": subscription["endpoint"], "keys": subscription["keys"]},
                )
            pushes = max(int(2000 * SCALE), 100)
            push_rate = await rate_of(s, "browser", "bench-push", pushes, lambda: len(s.push.received))
            rows.append(
                row("notify web push encrypted, 2 workers (noisy)", push_rate, "push/s", ">= 300", push_rate >= 300)
            )
            p99 = await in_app_p99(s, max(int(200 * SCALE), 20))
            rows.append(row("notify in-app Send -> SSE p99 (noisy)", p99, "ms", "<= 50", p99 <= 50))
            killed = await telegram_run(s, "kill9", kill_after=max(int(600 * SCALE), 50))
            rows += [
                row("notify kill -9 drill lost", killed["lost"], "count", "== 0", killed["lost"] == 0),
                row(
                    "notify kill -9 drill sent twice (in flight at the kill)",
                    killed["duplicated"],
                    "count",
                    "info",
                    True,
                ),
                row(
                    "notify kill -9 drill average (noisy)", killed["average"], "msg/s", ">= 25", killed["average"] >= 25
                ),
            ]
    return rows


def run() -> list[dict[str, Any]]:
    return asyncio.run(measure())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
