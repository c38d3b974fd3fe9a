"""Settings come from the environment, validated once, with one clear line on a bad value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from runtime.config import CommonSettings, format_validation_error, load_settings, parse_address
from runtime.grpc_server import GrpcService


class ServiceSettings(CommonSettings):
    batch_size: int = 10


def settings_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        ServiceSettings()
    return format_validation_error(ServiceSettings, caught.value)


def test_defaults_name_the_documented_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "STATUS_ADDR", "MEDIA_ADDR", "NOTIFY_ADDR", "AMI_INGEST_ADDR", "GATEWAY_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = CommonSettings()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.status_addr == "127.0.0.1:50051"
    assert settings.media_addr == "127.0.0.1:50052"
    assert settings.notify_addr == "127.0.0.1:50053"
    assert settings.ami_ingest_addr == "127.0.0.1:50054"
    assert settings.gateway_port == 8080
    assert settings.log_level == "INFO"


def test_unset_database_url_means_sqlite_file_under_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    settings = CommonSettings()
    assert settings.async_database_url == f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/sb", "postgresql+asyncpg://u:p@db:5432/sb"),
        ("postgresql://u@db/sb", "postgresql+asyncpg://u@db/sb"),
        ("postgresql+asyncpg://u@db/sb", "postgresql+asyncpg://u@db/sb"),
        ("sqlite:///tmp/x.db", "sqlite+aiosqlite:///tmp/x.db"),
    ],
)
def test_database_url_is_rewritten_to_its_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert CommonSettings().async_database_url == expected


def test_the_auth_tables_live_in_auth_database_url_else_in_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/status")
    monkeypatch.delenv("AUTH_DATABASE_URL", raising=False)
    assert CommonSettings().auth_store_url == "postgresql+asyncpg://u@db/status"
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgres://u@db/auth")
    assert CommonSettings().auth_store_url == "postgresql+asyncpg://u@db/auth"
    assert CommonSettings().async_database_url == "postgresql+asyncpg://u@db/status"


def test_settings_are_frozen() -> None:
    settings = CommonSettings()
    with pytest.raises(ValidationError):
        settings.log_level = "DEBUG"


def test_subclass_reads_its_own_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_SIZE", "25")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = ServiceSettings()
    assert settings.batch_size == 25
    assert settings.log_level == "DEBUG"


def test_http_redis_url_is_named_with_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    line = settings_error(monkeypatch, REDIS_URL="http://x")
    assert line == "config error: REDIS_URL: must be a redis://, rediss:// or unix:// URL (got 'http://x')"


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6380/2", "rediss://cache:6380", "unix:///run/redis.sock"])
def test_redis_url_schemes_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    assert CommonSettings().redis_url == url


def test_port_out_of_range_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    line = settings_error(monkeypatch, GATEWAY_PORT="70000")
    assert line == "config error: GATEWAY_PORT: must be a TCP port 1-65535 (got '70000')"


def test_address_without_port_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    line = settings_error(monkeypatch, STATUS_ADDR="localhost")
    assert line == "config error: STATUS_ADDR: must be host:port (got 'localhost')"


def test_non_numeric_port_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    line = settings_error(monkeypatch, METRICS_PORT="abc")
    assert line.startswith("config error: METRICS_PORT: ")
    assert line.endswith("(got 'abc')")


def test_password_in_a_bad_url_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    line = settings_error(monkeypatch, DATABASE_URL="mysql://app:hunter2@db/sb")
    assert "hunter2" not in line
    assert line == "config error: DATABASE_URL: must be a postgresql:// or sqlite:// URL (got 'mysql://app:***@db/sb')"


def test_several_bad_values_still_give_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    line = settings_error(monkeypatch, REDIS_URL="http://x", GATEWAY_PORT="0", BATCH_SIZE="many")
    assert "\n" not in line
    assert line.startswith("config error: ")
    assert "[also invalid: " in line


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("status:1", ("status", 1)),
        ("[::1]:443", ("::1", 443)),
        ("dns:///status:50051", ("status", 50051)),
        ("dns://127.0.0.1:53/status.switchboard.svc:50051", ("status.switchboard.svc", 50051)),
    ],
)
def test_parse_address(value: str, expected: tuple[str, int]) -> None:
    assert parse_address(value) == expected


@pytest.mark.parametrize(
    "value", ["", ":50051", "host:", "host:0", "host:65536", "host:x1", "a b:1", "dns://server-only:53"]
)
def test_parse_address_rejects(value: str) -> None:
    with pytest.raises(ValueError, match=r"host:port|port"):
        parse_address(value)


def test_load_settings_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Fresh(CommonSettings):
        pass

    monkeypatch.setenv("NOTIFY_ADDR", "127.0.0.1")
    with pytest.raises(SystemExit) as caught:
        load_settings(Fresh)
    assert caught.value.code == 2
    assert capsys.readouterr().err == "config error: NOTIFY_ADDR: must be host:port (got '127.0.0.1')\n"


def test_load_settings_builds_once(monkeypatch: pytest.MonkeyPatch) -> None:
    class Once(CommonSettings):
        pass

    first = load_settings(Once)
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    assert load_settings(Once) is first


def test_grpc_bind_host_keeps_the_port_of_the_dialled_address() -> None:
    service = GrpcService(
        name="x", address="status:50051", register=lambda server: None, service_names=[], bind_host="0.0.0.0"
    )
    assert service.listen_address == "0.0.0.0:50051"
    assert dataclasses.replace(service, bind_host=None).listen_address == "status:50051"
    assert dataclasses.replace(service, bind_host="::").listen_address == "[::]:50051"


def test_secrets_dir_files_fill_what_the_environment_leaves_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class WithSecrets(CommonSettings):
        pass

    (tmp_path / "DATABASE_URL").write_text("postgresql://app:s3cret@db:5432/switchboard\n")
    (tmp_path / "REDIS_URL").write_text("redis://from-file:6379/0")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://from-env:6379/0")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    settings = load_settings(WithSecrets)
    assert settings.database_url == "postgresql+asyncpg://app:s3cret@db:5432/switchboard"
    assert settings.redis_url == "redis://from-env:6379/0"
