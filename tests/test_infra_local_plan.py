"""scripts.local_plan: which processes `make run` starts and the environment each one gets."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from devsupport.ports import free_port
from devsupport.redis_server import RedisServer
from scripts.local_plan import AMI_FEED, NOTIFY_SINKS, Plan, PlanError, build_plan, load_procfile, metrics_port_names
from scripts.run_local import SuiteManager, choose_redis, python_module, runnable_module, say

PROCFILE = load_procfile()
REDIS = "redis://127.0.0.1:7000/0"


def _plan(env: dict[str, str], tmp_path: Path, ami_feed_port: int = 5038) -> Plan:
    return build_plan(
        {"DATA_DIR": str(tmp_path)} | env, redis_url=REDIS, procfile=PROCFILE, ami_feed_port=ami_feed_port
    )


def test_procfile_runs_every_service_worker_gateway_and_the_demo_feed() -> None:
    assert set(PROCFILE) == {
        "status",
        "ami_ingest",
        "media",
        "media_worker",
        "media_watermark_worker",
        "media_sync_worker",
        "notify",
        "notify_worker",
        "notify_telegram_worker",
        "notify_sinks",
        "workflow_worker",
        "queue_admin",
        "gateway",
        AMI_FEED,
    }
    modules = {name: python_module(command) for name, command in PROCFILE.items()}
    assert modules["status"] == "services.status"
    assert modules["gateway"] == "gateway"
    assert modules[AMI_FEED] == "services.ami_ingest.simulator"
    assert all(modules.values()), "every Procfile entry is `python -m <module>`"


def test_defaults_are_the_documented_addresses_and_an_embedded_sqlite(tmp_path: Path) -> None:
    plan = _plan({}, tmp_path, ami_feed_port=5038)
    env = plan.common_env
    assert env["STATUS_ADDR"] == "127.0.0.1:50051"
    assert env["MEDIA_ADDR"] == "127.0.0.1:50052"
    assert env["NOTIFY_ADDR"] == "127.0.0.1:50053"
    assert env["AMI_INGEST_ADDR"] == "127.0.0.1:50054"
    assert env["GATEWAY_PORT"] == "8080"
    assert env["REDIS_URL"] == REDIS
    assert env["DATABASE_URL"] == f"sqlite+aiosqlite:///{tmp_path.resolve()}/switchboard.db"
    assert plan.gateway_url == "http://127.0.0.1:8080"


def test_without_ami_host_the_demo_feed_runs_and_ami_ingest_points_at_it(tmp_path: Path) -> None:
    plan = _plan({}, tmp_path, ami_feed_port=6001)
    names = [p.name for p in plan.processes]
    assert AMI_FEED in names
    ingest = next(p for p in plan.processes if p.name == "ami_ingest")
    assert (ingest.env["AMI_HOST"], ingest.env["AMI_PORT"]) == ("127.0.0.1", "6001")
    assert plan.listen_ports["AMI_PORT"] == 6001


def test_with_ami_host_the_demo_feed_stays_off(tmp_path: Path) -> None:
    plan = _plan({"AMI_HOST": "127.0.0.1", "AMI_PORT": "5039"}, tmp_path)
    assert AMI_FEED not in [p.name for p in plan.processes]
    assert plan.common_env["AMI_PORT"] == "5039"


def test_every_port_follows_its_environment_variable(tmp_path: Path) -> None:
    env = {
        "GATEWAY_PORT": "18080",
        "STATUS_ADDR": "127.0.0.1:15051",
        "AMI_PORT": "15038",
        "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/sb",
    }
    plan = _plan(env, tmp_path)
    assert plan.gateway_url == "http://127.0.0.1:18080"
    assert plan.listen_ports["STATUS_ADDR"] == 15051
    assert plan.common_env["AMI_PORT"] == "15038"
    assert plan.common_env["DATABASE_URL"] == env["DATABASE_URL"]


def test_each_process_gets_its_own_metrics_port(tmp_path: Path) -> None:
    plan = _plan({"STATUS_METRICS_PORT": "9101", "GATEWAY_METRICS_PORT": "-1"}, tmp_path)
    ports = {p.name: p.env["METRICS_PORT"] for p in plan.processes}
    assert ports["status"] == "9101"
    assert ports["gateway"] == "-1"
    assert ports["media"] == "0", "unset means: the OS picks a free port"


def test_the_banner_lists_every_metrics_url(tmp_path: Path) -> None:
    ports = {name: str(9200 + i) for i, name in enumerate(metrics_port_names(PROCFILE))}
    plan = _plan(ports, tmp_path)
    banner = plan.banner()
    assert f"gateway                  {plan.gateway_url}/metrics" in banner
    assert f"status                   http://127.0.0.1:{ports['STATUS_METRICS_PORT']}/metrics" in banner
    listed = {line.split()[1] for line in banner.splitlines() if line.strip().startswith("metrics ")}
    assert listed == {p.name for p in plan.processes} - {AMI_FEED, NOTIFY_SINKS}


def test_processes_without_a_metrics_server_get_no_metrics_port_to_fill() -> None:
    names = metrics_port_names(PROCFILE)
    assert "STATUS_METRICS_PORT" in names
    assert {"GATEWAY_METRICS_PORT", "AMI_FEED_METRICS_PORT", "NOTIFY_SINKS_METRICS_PORT"}.isdisjoint(names)


def test_each_line_make_run_says_is_one_write_ending_in_a_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []

    class Recorder:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            return None

    monkeypatch.setattr("sys.stdout", Recorder())
    say("READY in 3.1s: every backend reports SERVING\nSwitchboard is running:")
    assert writes == [
        "make-run | READY in 3.1s: every backend reports SERVING\n",
        "make-run | Switchboard is running:\n",
    ]


def test_other_variables_pass_through_to_every_process(tmp_path: Path) -> None:
    plan = _plan({"LOG_LEVEL": "DEBUG", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, tmp_path)
    for process in plan.processes:
        assert process.env["LOG_LEVEL"] == "DEBUG"
        assert process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GATEWAY_PORT": "http"}, "GATEWAY_PORT"),
        ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT"),
        ({"STATUS_ADDR": "nohost"}, "STATUS_ADDR"),
        ({"MEDIA_METRICS_PORT": "x"}, "MEDIA_METRICS_PORT"),
        ({"STATUS_ADDR": "127.0.0.1:8080"}, "GATEWAY_PORT, STATUS_ADDR"),
        ({"RUN_PROCESSES": "status,nope"}, "RUN_PROCESSES"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(env: dict[str, str], named: str, tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=named):
        _plan(env, tmp_path)


def test_run_processes_selects_a_subset(tmp_path: Path) -> None:
    plan = _plan({"RUN_PROCESSES": "status, gateway"}, tmp_path)
    assert [p.name for p in plan.processes] == ["status", "gateway"]


def test_banner_lists_every_url(tmp_path: Path) -> None:
    banner = _plan({"GATEWAY_PORT": "18080"}, tmp_path).banner()
    for expected in ("/dashboard", "/admin/queues", "/docs", "grpc://127.0.0.1:50051", REDIS):
        assert expected in banner


def test_runnable_module_needs_a_main_for_packages() -> None:
    assert runnable_module("scripts.run_local")
    assert not runnable_module("scripts")
    assert not runnable_module("services.no_such_service")


def test_redis_url_from_the_environment_wins(tmp_path: Path) -> None:
    assert choose_redis({"REDIS_URL": REDIS}, tmp_path) == (REDIS, None)


def test_an_answering_redis_on_the_default_port_is_reused(redis_server: RedisServer, tmp_path: Path) -> None:
    url, started = choose_redis({}, tmp_path, default_port=redis_server.port)
    assert (url, started) == (f"redis://127.0.0.1:{redis_server.port}/0", None)


def test_without_any_redis_one_is_started_with_its_data_under_data_dir(tmp_path: Path) -> None:
    url, started = choose_redis({}, tmp_path, default_port=free_port())
    assert started is not None
    try:
        assert url == started.url
        assert started.ping()
        assert started.data_dir == tmp_path / "redis"
    finally:
        started.stop()
    assert not started.ping()


def test_the_redis_make_run_starts_keeps_every_acknowledged_write_through_a_kill_9(tmp_path: Path) -> None:
    _url, started = choose_redis({}, tmp_path, default_port=free_port())
    assert started is not None
    try:
        with redis.Redis.from_url(started.url) as client:
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("appendfsync") == {"appendfsync": "always"}
            client.set("acknowledged", "1")
        started.kill()
        started.start()
        with redis.Redis.from_url(started.url) as client:
            assert client.get("acknowledged") == b"1"
    finally:
        started.stop()


def test_unconfigured_notify_providers_point_at_the_local_servers(tmp_path: Path) -> None:
    plan = _plan({"GATEWAY_PORT": "9000"}, tmp_path)
    env = plan.common_env
    assert "notify_sinks" in {p.name for p in plan.processes}
    assert (env["SMTP_HOST"], env["SMTP_PORT"]) == ("127.0.0.1", "2525")
    assert env["TELEGRAM_API_URL"] == "http://127.0.0.1:8081"
    assert env["SMS_API_URL"] == "http://127.0.0.1:8083"
    assert env["SMS_STATUS_CALLBACK_URL"] == "http://127.0.0.1:9000/api/notifications/sms/status"
    assert plan.listen_ports["NOTIFY_SINKS_PORT"] == 8084


def test_configured_notify_providers_are_used_and_no_local_servers_run(tmp_path: Path) -> None:
    configured = {
        "SMTP_HOST": "smtp.example.com",
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "SMS_API_URL": "https://api.twilio.com",
    }
    plan = _plan(configured, tmp_path)
    assert "notify_sinks" not in {p.name for p in plan.processes}
    assert plan.common_env["SMTP_HOST"] == "smtp.example.com"
    assert "NOTIFY_SINKS_URL" not in plan.common_env


def test_ctrl_c_while_processes_are_still_starting_stops_the_started_ones_without_crashing() -> None:
    from honcho.printer import Printer

    manager = SuiteManager(Printer(io.StringIO()))
    manager.add_process("started", "true")
    manager.add_process("starting", "true")
    # In its own session, as honcho starts processes: honcho signals the process group.
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        manager._processes["started"]["pid"] = running.pid  # honcho heard its start; not the other's
        manager.terminate()
        assert running.wait(timeout=10) == -15  # SIGTERM
        assert "pid" not in manager._processes["starting"]  # kept, to be killed once it starts
    finally:
        running.kill()
        running.wait()
