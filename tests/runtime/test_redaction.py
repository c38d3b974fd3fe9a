"""No password of a connection URL reaches a log line: not in a field, not in a message, not in an
exception's text, with the logging configured as every process configures it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.logging import configure_logging, get_logger
from runtime.redaction import redact

SECRET = "s3cr3t-Pa55"
URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "@/")
"""What a URL's user info holds (anything else is percent-encoded)."""


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", service="test", stream=stream)
    try:
        yield stream
    finally:
        configure_logging("WARNING")


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_url_field_is_logged_without_its_password(log_output: io.StringIO) -> None:
    get_logger("t").info(
        "connecting",
        url=f"redis://app:{SECRET}@redis.internal:6379/0",
        nested={"dsn": [f"postgresql+asyncpg://sb:{SECRET}@db/sb"]},
    )
    (line,) = lines(log_output)
    assert SECRET not in json.dumps(line)
    assert line["url"] == "redis://app:***@redis.internal:6379/0"
    assert line["nested"] == {"dsn": ["postgresql+asyncpg://sb:***@db/sb"]}


def test_an_exception_naming_a_url_is_logged_without_its_password(log_output: io.StringIO) -> None:
    try:
        raise ConnectionError(f"cannot reach redis://:{SECRET}@10.0.0.5:6379")
    except ConnectionError:
        get_logger("t").exception("redis unreachable")
    (line,) = lines(log_output)
    assert SECRET not in json.dumps(line)
    assert "redis://:***@10.0.0.5:6379" in json.dumps(line)


def test_a_standard_library_log_record_is_redacted_too(log_output: io.StringIO) -> None:
    logging.getLogger("somelib").warning("retrying amqp://guest:%s@mq:5672/", SECRET)
    (line,) = lines(log_output)
    assert SECRET not in json.dumps(line)


@given(
    user=st.text(alphabet=URL_SAFE.replace(":", ""), max_size=12),
    password=st.text(alphabet=URL_SAFE, min_size=1, max_size=24),
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
)
def test_redact_never_leaves_the_password_of_a_url(user: str, password: str, host: str) -> None:
    url = f"redis://{user}:{password}@{host}:6379/0"
    assert redact(f"error at {url}, giving up") == f"error at redis://{user}:***@{host}:6379/0, giving up"


def test_text_without_credentials_is_unchanged() -> None:
    text = "http://127.0.0.1:8080/dashboard?x=1 and user@example.com"
    assert redact(text) == text
