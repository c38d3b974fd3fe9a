"""`make run` end to end: every process up, /readyz 200, Ctrl-C stops them all; with
no AUTH_BOOTSTRAP_TOKEN given, one is made into DATA_DIR and the login line names it; with no
notify provider configured, every channel delivers to the local providers (mail written under
DATA_DIR/mail, Web Push signed with the VAPID key made into DATA_DIR).

Runs the same runner `make run` calls (``python -m scripts.run_local``) with every port moved to
a free one, the test's own Redis and a throwaway data directory, so it never touches a
developer's running suite.
"""

from __future__ import annotations

import json
import signal
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devsupport.procs import ServiceProcess, descendants, health_status, is_alive, reflected_services
from devsupport.waiting import wait_until_blocking
from scripts.local_plan import load_procfile
from scripts.run_local import BOOTSTRAP_TOKEN_FILE
from services.notify.vapid import public_key
from tests.support.local_suite import local_suite_ports

READY_WITHIN_SECONDS = 90.0
"""A bound, not a timing: the start-up is about 17 CPU-seconds, 15 Python processes each importing
grpc, OpenTelemetry, SQLAlchemy and the rest (0.7-1.6 s each) plus the migrations; ready in 18 s at
load 14 and past 30 s at load 20 on 2 cores. tests/deploy/test_traces.py gives the same suite 90 s."""
CONTRACTS = {
    "STATUS_ADDR": "switchboard.status.v1.StatusService",
    "MEDIA_ADDR": "switchboard.media.v1.MediaService",
    "NOTIFY_ADDR": "switchboard.notify.v1.NotifyService",
    "AMI_INGEST_ADDR": "switchboard.ingest.v1.IngestControl",
    "QUEUE_ADMIN_ADDR": "switchboard.queue.v1.QueueAdmin",
}


def demo_operators(gateway_port: int, headers: dict[str, str]) -> int:
    url = f"http://127.0.0.1:{gateway_port}/api/queue-status/snapshot"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:
        return len(json.load(answer)["data"]["operators"])


def anonymous_status(gateway_port: int) -> int:
    url = f"http://127.0.0.1:{gateway_port}/api/queue-status/snapshot"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def post_json(url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def get_json(url: str, headers: dict[str, str]) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
        return json.load(answer)


def notification_delivered(gateway_port: int, body: dict[str, str], headers: dict[str, str]) -> bool:
    answer = post_json(f"http://127.0.0.1:{gateway_port}/api/notifications", body, headers)
    (notification_id,) = answer["data"]["notificationIds"]
    url = f"http://127.0.0.1:{gateway_port}/api/notifications/{notification_id}"

    def delivered() -> bool:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:
            return bool(json.load(answer)["data"]["state"] == "delivered")

    try:
        return wait_until_blocking(delivered, within=30, what="the notification delivered", interval=0.2)
    except TimeoutError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(240)  # the ready bound, then up to 5 notifications and the stop, each waited for
def test_make_run_brings_every_service_to_serving_and_ctrl_c_stops_all(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for inherited in ("AMI_HOST", "RUN_PROCESSES", "DATABASE_URL"):
        monkeypatch.delenv(inherited, raising=False)
    suite_ports = local_suite_ports(redis_url, tmp_path / "data")
    gateway, addresses, env = suite_ports.gateway, suite_ports.addresses, suite_ports.env
    # Empty is unset (the test credential the harness gives every process is taken away).
    env["AUTH_BOOTSTRAP_TOKEN"] = ""
    runner = ServiceProcess.module("scripts.run_local", env=env)
    with runner:
        runner.wait_http(f"http://127.0.0.1:{gateway}/readyz/backends", timeout=READY_WITHIN_SECONDS)
        # No token was given: make run made one (owner-only) into DATA_DIR and every process has it.
        token_file = tmp_path / "data" / BOOTSTRAP_TOKEN_FILE
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        headers = {"authorization": f"Bearer {token}"}
        assert anonymous_status(gateway) == 401
        for name, address in addresses.items():
            assert health_status(address) == "SERVING", name
            assert CONTRACTS[name] in reflected_services(address), name

        # The demo AMI feed brings the dashboard alive: operators arrive through ingest and status.
        wait_until_blocking(
            lambda: demo_operators(gateway, headers) > 0,
            within=15,
            what="demo operators",
            interval=0.2,
            detail=runner.output,
        )
        # No provider is configured: every channel reaches its local provider.
        api = f"http://127.0.0.1:{gateway}/api"
        vapid_file = tmp_path / "data" / "vapid-private.pem"
        assert stat.S_IMODE(vapid_file.stat().st_mode) == 0o600
        published = get_json(f"{api}/push/vapid-public-key", headers)["data"]["publicKey"]
        assert published == public_key(vapid_file.read_text())
        subscription = post_json(f"http://127.0.0.1:{suite_ports.env['NOTIFY_SINK_PUSH_PORT']}/subscriptions", {}, {})
        registration = {"userId": "op-1", "endpoint": subscription["endpoint"], "keys": subscription["keys"]}
        post_json(f"{api}/push/subscriptions", registration, headers)
        for body in (
            {"channel": "telegram", "to": "4242", "text": "hi"},
            {"channel": "email", "to": "ops@example.com", "subject": "make run", "text": "hi"},
            {"channel": "browser", "to": "op-1", "subject": "make run", "text": "hi"},
            {"channel": "sms", "to": "+15550002222", "text": "hi"},  # delivered once the provider's receipt came back
            {"channel": "database", "to": "op-1", "text": "hi"},
        ):
            assert notification_delivered(gateway, body, headers), (body, runner.output())
        (mail,) = (tmp_path / "data" / "mail").glob("*.eml")
        assert "Subject: make run" in mail.read_text()
        wait_until_blocking(
            lambda: f"/dashboard with the bootstrap token (in {token_file}): {token}" in runner.stdout,
            within=15,
            what="the login line",
            interval=0.2,
            detail=runner.output,
        )

        children = descendants(runner.pid)
        started = runner.stdout
        for process in load_procfile():
            assert f"{process} started" in started, runner.output()

        runner.send_signal(signal.SIGINT)
        assert runner.wait_exit(timeout=15) == 0, runner.output()

    wait_until_blocking(
        lambda: not any(is_alive(pid) for pid in children), within=10, what="every child exited", detail=runner.output
    )
    assert "SIGINT received" in runner.stdout
    runner.close()
