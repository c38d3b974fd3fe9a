"""The notify queues as the service declares them from its settings: the defaults are the numbers
the original system ran with (a queue of concurrency 10, 5 attempts backing off from 2 s) and the
Bot API's limits (30/s for the bot, 1/s per chat, 20/min per group chat), each one configurable;
and each provider read from the environment variables issue 10 names."""

from __future__ import annotations

import pytest

from runtime.queue.spec import RateLimit
from services.notify.domain.channels import Channel
from services.notify.queues import GROUP_RATE_PREFIX, NOTIFICATIONS, TELEGRAM, queue_specs
from services.notify.settings import NotifySettings

VARIABLES = (
    "NOTIFY_CONCURRENCY",
    "NOTIFY_ATTEMPTS",
    "NOTIFY_BACKOFF_BASE_S",
    "TELEGRAM_API_URL",
    "TELEGRAM_RATE_PER_SECOND",
    "TELEGRAM_CHAT_RATE",
    "TELEGRAM_GROUP_RATE",
    *(f"NOTIFY_{channel.value.upper()}_ATTEMPTS" for channel in Channel),
)


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("unset")
def test_by_default_the_queues_run_at_the_original_numbers_and_the_bot_apis_limits() -> None:
    settings = NotifySettings()
    assert settings.telegram_api_url == "https://api.telegram.org"
    specs = queue_specs(settings)
    assert set(specs) == {"notifications", "notifications_telegram"}
    notifications, telegram = specs[NOTIFICATIONS], specs[TELEGRAM]
    assert (notifications.concurrency, notifications.attempts, notifications.backoff.base) == (10, 5, 2.0)
    assert notifications.rate_limit is None
    assert (telegram.attempts, telegram.backoff.base) == (5, 2.0)
    assert telegram.rate_limit == RateLimit(30, 1.0)
    assert telegram.key_rate_limit == RateLimit(1, 1.0)
    assert telegram.key_prefix_rate_limits == {GROUP_RATE_PREFIX: RateLimit(20, 60.0)}


@pytest.mark.usefixtures("unset")
def test_the_limits_and_the_attempts_of_each_channel_are_configured_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEGRAM_RATE_PER_SECOND", "25")
    monkeypatch.setenv("NOTIFY_TELEGRAM_ATTEMPTS", "7")
    monkeypatch.setenv("NOTIFY_SMS_ATTEMPTS", "2")
    settings = NotifySettings()
    specs = queue_specs(settings)
    assert specs[TELEGRAM].rate_limit == RateLimit(25, 1.0)
    assert specs[TELEGRAM].attempts == 7
    assert {c: settings.attempts_for(c) for c in Channel} == {
        Channel.EMAIL: 5,
        Channel.TELEGRAM: 7,
        Channel.BROWSER: 5,
        Channel.DATABASE: 5,
        Channel.SMS: 2,
    }


def test_each_provider_is_configured_by_the_environment_variables_the_issue_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = {
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PORT": "587",
        "SMTP_USERNAME": "mailer",
        "SMTP_PASSWORD": "mail-secret",
        "SMTP_STARTTLS": "true",
        "SMTP_FROM": "ops@example.com",
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_API_URL": "http://127.0.0.1:8081",
        "VAPID_PRIVATE_KEY": "vapid-pem",
        "VAPID_SUBJECT": "mailto:ops@example.com",
        "SMS_API_URL": "https://api.twilio.example",
        "SMS_ACCOUNT_SID": "AC1",
        "SMS_AUTH_TOKEN": "sms-secret",
        "SMS_FROM": "+15550001111",
    }
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    settings = NotifySettings()
    read = {name: getattr(settings, name.lower()) for name in given}
    assert read == {**given, "SMTP_PORT": 587, "SMTP_STARTTLS": True}
    assert all(settings.configured(channel) for channel in Channel)
