"""Notify benchmarks: Telegram at the Bot API's limit, the 429 drill, email/push rates, in-app
latency, and a worker killed with SIGKILL mid-run.

Everything is real and local: Redis, ``python -m services.notify``, the gateway, two worker
processes per queue, and the local providers of ``services.notify.local`` (the Bot API server
enforces 30/s, 1/s per chat, 20/min per group and counts 429s; its log is the judge of what was
lost or duplicated). ``NOTIFY_BENCH_SCALE`` (default 1.0) scales the message counts down for a
quick check (``0.2``: a fifth); ``NOTIFY_BENCH_PARTS`` picks parts (``telegram,drill,email,push,
inapp,kill``). Beside each rate: the CPU per message of every process, a figure that does not
depend on the machine's load.

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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from devsupport.auth import AUTH_HEADERS
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from services.notify import keys
from services.notify.local.http import RunningServer, start
from services.notify.local.push_service import PushState
from services.notify.local.push_service import create_app as push_app
from services.notify.local.smtp_sink import SmtpSink
from services.notify.local.telegram_api import BotApiState
from services.notify.local.telegram_api import create_app as bot_app
from services.notify.queues import TELEGRAM
from services.notify.vapid import generate_private_key

SCALE = float(os.environ.get("NOTIFY_BENCH_SCALE", "1.0"))
TOKEN = "42:bench"
STALL_S = 90.0


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
    pids: dict[str, int | str]
    redis: Redis
    """The processes whose CPU a figure is charged: ``service``, ``gateway``, ``redis``, and
    ``telegram`` / ``notifications`` (the two workers of each queue, comma-separated)."""


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by each part of the suite between ``__init__`` and ``parts()``: a
    figure that does not depend on how busy the machine is. ``bench`` is this process (the
    local providers and the client)."""

    def __init__(self, s: Suite) -> None:
        self._pids = {name: [int(p) for p in str(pids).split(",")] for name, pids in s.pids.items()}
        self._start = self._now()

    def _now(self) -> dict[str, float]:
        out = {name: sum(process_cpu_s(pid) for pid in pids) for name, pids in self._pids.items()}
        out["bench"] = time.process_time()
        return out

    def parts(self) -> dict[str, float]:
        end = self._now()
        return {name: end[name] - self._start[name] for name in end}


def spread_rows(what: str, values: list[float]) -> list[dict[str, Any]]:
    if len(values) < 2:
        return []
    q = statistics.quantiles(values, n=100)
    load = os.getloadavg()[0]
    return [
        row(f"notify {what}, p50 (load {load:.1f})", q[49], "ms", "info", True),
        row(f"notify {what}, p99 (load {load:.1f})", q[98], "ms", "info", True),
    ]


def cpu_rows(what: str, parts: dict[str, float], count: int) -> list[dict[str, Any]]:
    """CPU ms per message: in total, and in the workers that delivered them."""
    load = os.getloadavg()[0]
    total = sum(parts.values()) * 1000 / max(count, 1)
    detail = ", ".join(f"{name} {seconds * 1000 / max(count, 1):.2f}" for name, seconds in sorted(parts.items()))
    return [
        row(f"notify {what}: CPU per message, all processes ({detail}; load {load:.1f})", total, "ms", "info", True)
    ]


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
    pids: dict[str, int | str] = {
        "service": service.pid,
        "gateway": gateway.pid,
        "redis": redis.pid or 0,
        **{name: ",".join(str(w.pid) for w in ws) for name, ws in workers.items()},
    }
    try:
        service.wait_serving(notify_addr, "switchboard.notify.v1.NotifyService", timeout=120)
        gateway.wait_http(f"http://127.0.0.1:{gateway_port}/healthz", timeout=120)
        async with Redis.from_url(redis.url) as client:
            yield Suite(f"http://127.0.0.1:{gateway_port}", bot, push, push_server, smtp, workers, env, pids, client)
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
    cpu = CpuMeter(s)
    sent: list[tuple[str, str]] = []
    ids: dict[tuple[str, str], str] = {}
    async with httpx.AsyncClient(base_url=s.gateway, timeout=60, headers=AUTH_HEADERS) as client:
        for round_ in range(3):
            for first in range(0, chats, 100):
                to = [str(1000 + c) for c in range(first, min(first + 100, chats))]
                batch = [(chat, f"{tag} #{round_}") for chat in to]
                answer = await post(client, {"channel": "telegram", "to": to, "text": batch[0][1]})
                ids.update(zip(batch, answer, strict=True))
                sent += batch
        for group in groups:
            for i in range(per_group):
                sent.append((group, f"{tag} g{i}"))
                [ids[sent[-1]]] = await post(client, {"channel": "telegram", "to": group, "text": f"{tag} g{i}"})
    killed_in_flight = 0
    # Lost is never delivered, not late: the wait ends when every message arrived, or when none
    # arrived for STALL_S (longer than a group's minute window and a retry_after), or at a cap.
    deadline = time.monotonic() + 120 + len(sent) / 5
    progress, last_count = time.monotonic(), 0
    sends: dict[str, float] = {}  # the gate's bot window: ticket (id:admitted ms) -> answer ms
    window = keys.send_gate_window(TELEGRAM, "bot")
    while time.monotonic() < deadline and time.monotonic() - progress < STALL_S:
        sends.update((m.decode(), score) for m, score in await s.redis.zrange(window, 0, -1, withscores=True))
        if len(s.bot.accepted) != last_count:
            progress, last_count = time.monotonic(), len(s.bot.accepted)
        got = {(m["chat_id"], m["text"]) for m in s.bot.accepted}
        if kill_after and len(s.bot.accepted) >= kill_after and killed_in_flight == 0:
            s.workers["telegram"][0].send_signal(signal.SIGKILL)
            killed_in_flight = 1
        if set(sent) <= got:
            break
        await asyncio.sleep(0.25)
    cpu_parts = cpu.parts()
    admitted = sorted((int(ticket.rsplit(":", 1)[1]), answered) for ticket, answered in sends.items())
    on_wire = [answered - at for at, answered in admitted]
    # How long after the bot window let a send go (its 30th predecessor's answer + 1 s) the next
    # one was admitted: the time a full-speed gate loses per send.
    # Gaps of a second or more are no send waiting (between rounds, the groups' minute): left out.
    late = [at - (admitted[i - 30][1] + 1000) for i, (at, _) in enumerate(admitted) if i >= 30]
    late = [gap for gap in late if gap < 1000]
    texts = Counter((m["chat_id"], m["text"]) for m in s.bot.accepted)
    lost = sorted(set(sent) - set(texts))
    lost_states: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=s.gateway, timeout=60, headers=AUTH_HEADERS) as client:
        for key in lost[:50]:
            data = (await client.get(f"/api/notifications/{ids[key]}")).json()["data"]
            lost_states[f"{data['state']}: {data.get('lastError') or ''}"[:120]] += 1
    if lost:
        print(f"{tag}: {len(lost)} not delivered, e.g. {lost[:5]}: {dict(lost_states)}", file=sys.stderr)
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
        "cpu": cpu_parts,
        "on_wire_ms": on_wire,
        "late_ms": late,
        "accepted": len(s.bot.accepted),
        "too_many": s.bot.too_many,
        "lost": len(lost),
        "duplicated": sum(n - 1 for n in texts.values() if n > 1),
        "chat_max_1s": max((max_in_window(t, 1.0) for c, t in per_chat.items() if not c.startswith("-")), default=0),
        "group_max_60s": max((max_in_window(t, 60.0) for c, t in per_chat.items() if c.startswith("-")), default=0),
        "during_pause": s.bot.sent_during_pause,
        "by_limit": dict(s.bot.violations_by_limit),
    }


async def rate_of(s: Suite, channel: str, to: str, count: int, received: Callable[[], int]) -> float:
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


async def telegram_rows(s: Suite) -> list[dict[str, Any]]:
    """Run 1: Telegram at the Bot API's limit."""
    rows: list[dict[str, Any]] = []
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
        *cpu_rows("telegram", one["cpu"], one["accepted"]),
        *spread_rows("telegram: admitted -> answered (on the wire, one at a time)", one["on_wire_ms"]),
        *spread_rows("telegram: admitted after the bot window had room", one["late_ms"]),
    ]
    return rows


async def drill_rows(s: Suite) -> list[dict[str, Any]]:
    """Run 2: the server answers 1 % of sends with 429 retry_after 3."""
    rows: list[dict[str, Any]] = []
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
    return rows


async def delivered_rows(
    s: Suite, *, name: str, unit: str, what: str, channel: str, to: str, received: Callable[[], int]
) -> list[dict[str, Any]]:
    """Messages of ``channel`` through its 2 workers: the rate (row ``name``) and CPU per message."""
    count = max(int(2000 * SCALE), 100)
    cpu = CpuMeter(s)
    rate = await rate_of(s, channel, to, count, received)
    return [row(name, rate, unit, ">= 300", rate >= 300), *cpu_rows(what, cpu.parts(), received())]


async def email_rows(s: Suite) -> list[dict[str, Any]]:
    """Email to the aiosmtpd sink through 2 workers."""
    return await delivered_rows(
        s,
        name="notify email to aiosmtpd, 2 workers (noisy)",
        unit="msg/s",
        what="email",
        channel="email",
        to="",
        received=lambda: len(s.smtp.received),
    )


async def push_rows(s: Suite) -> list[dict[str, Any]]:
    """Encrypted Web Push to the local push service through 2 workers."""
    async with httpx.AsyncClient() as http:
        subscription = (await http.post(f"{s.push_server.url}/subscriptions")).json()
        await http.post(
            f"{s.gateway}/api/push/subscriptions",
            headers=AUTH_HEADERS,
            json={"userId": "bench-push", "endpoint": subscription["endpoint"], "keys": subscription["keys"]},
        )
    return await delivered_rows(
        s,
        name="notify web push encrypted, 2 workers (noisy)",
        unit="push/s",
        what="web push",
        channel="browser",
        to="bench-push",
        received=lambda: len(s.push.received),
    )


async def in_app_rows(s: Suite) -> list[dict[str, Any]]:
    """In-app: Send -> the user's SSE stream."""
    rows: list[dict[str, Any]] = []
    p99 = await in_app_p99(s, max(int(200 * SCALE), 20))
    rows.append(row("notify in-app Send -> SSE p99 (noisy)", p99, "ms", "<= 50", p99 <= 50))
    return rows


async def kill_rows(s: Suite) -> list[dict[str, Any]]:
    """Run 1 again, a Telegram worker killed with SIGKILL in the middle."""
    rows: list[dict[str, Any]] = []
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
            "notify kill -9 drill sustained over the private chats, as run 1 (noisy)",
            killed["rate"],
            "msg/s",
            ">= 25",
            killed["rate"] >= 25,
        ),
        # The groups' 20/minute puts their 40 messages over at least 79 s: the whole run's
        # average cannot pass 1,580 / 79 = 20/s however fast the private chats go.
        row("notify kill -9 drill average over every message", killed["average"], "msg/s", "info", True),
    ]
    return rows


PARTS = {
    "telegram": telegram_rows,
    "drill": drill_rows,
    "email": email_rows,
    "push": push_rows,
    "inapp": in_app_rows,
    "kill": kill_rows,
}


async def measure() -> list[dict[str, Any]]:
    """Every part, or those named in ``NOTIFY_BENCH_PARTS`` (comma-separated), in this order."""
    wanted = os.environ.get("NOTIFY_BENCH_PARTS", ",".join(PARTS)).split(",")
    unknown = set(wanted) - set(PARTS)
    if unknown:
        raise SystemExit(f"NOTIFY_BENCH_PARTS: unknown {sorted(unknown)}; choose from {list(PARTS)}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
        async with suite(Path(tmp)) as s:
            for name, part in PARTS.items():
                if name in wanted:
                    rows += await part(s)
    return rows


def run() -> list[dict[str, Any]]:
    return asyncio.run(measure())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
