"""Send requests: recipients per channel, priorities, schedules, limits, templates."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import InvalidArgument
from services.notify.domain.channels import Channel
from services.notify.domain.requests import Delivery, SendRequest, plan_delivery
from services.notify.domain.schedule import Priority
from services.notify.domain.templates import TemplateLibrary

NOW = 1_700_000_000_000
TEMPLATES = TemplateLibrary()
ATTEMPTS = {channel: 5 for channel in Channel}
WELCOME = {"name": "Ann", "company": "Acme", "login_url": "https://example.com/login"}


def plan(**fields: Any) -> Delivery:
    fields.setdefault("text", "hello")
    return plan_delivery(SendRequest(**fields), now_ms=NOW, templates=TEMPLATES, default_attempts=ATTEMPTS)


def refused(**fields: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        plan(**fields)
    return info.value


@pytest.mark.parametrize(
    ("channel", "to", "expected"),
    [
        ("email", "Ann@Example.COM", "Ann@example.com"),
        ("telegram", "123456789", "123456789"),
        ("telegram", "-1001234567890", "-1001234567890"),
        ("telegram", "@ops_team", "@ops_team"),
        ("browser", "user-42", "user-42"),
        ("database", "user-42", "user-42"),
        ("sms", "+4915112345678", "+4915112345678"),
    ],
)
def test_a_recipient_that_fits_its_channel_is_accepted_in_canonical_form(channel: str, to: str, expected: str) -> None:
    assert plan(channel=channel, to=to).to == expected


@pytest.mark.parametrize(
    ("channel", "to"),
    [
        ("email", "not-an-address"),
        ("email", "a@b@c"),
        ("telegram", "12ab"),
        ("telegram", "@abc"),
        ("telegram", "someone"),
        ("sms", "015112345678"),
        ("sms", "+0123456789"),
        ("sms", "+1 555 0100"),
        ("browser", "has space"),
        ("database", ""),
    ],
)
def test_a_recipient_that_does_not_fit_its_channel_is_refused_naming_to(channel: str, to: str) -> None:
    assert refused(channel=channel, to=to).field == "to"


def test_an_unknown_channel_is_refused_naming_channel() -> None:
    assert refused(channel="pigeon", to="x").field == "channel"


@pytest.mark.parametrize(
    ("priority", "queue_priority"), [("low", 0), ("normal", 3), ("", 3), ("high", 5), ("critical", 10)]
)
def test_priorities_map_to_queue_priorities(priority: str, queue_priority: int) -> None:
    delivery = plan(channel="sms", to="+4915112345678", priority=priority)
    assert delivery.queue_priority == queue_priority
    assert Priority.parse(priority).queue_priority == queue_priority


def test_a_bad_priority_is_refused_naming_priority() -> None:
    assert refused(channel="sms", to="+4915112345678", priority="urgent").field == "priority"


def test_a_delay_makes_the_delivery_due_later() -> None:
    assert plan(channel="database", to="u1", delay_ms=1500).due_ms == NOW + 1500


def test_send_at_in_the_future_is_kept_and_in_the_past_means_now() -> None:
    assert plan(channel="database", to="u1", send_at_ms=NOW + 60_000).due_ms == NOW + 60_000
    assert plan(channel="database", to="u1", send_at_ms=NOW - 5).due_ms == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"delay_ms": -1}, "delayMs"),
        ({"delay_ms": 400 * 24 * 3600 * 1000}, "delayMs"),
        ({"delay_ms": 5, "send_at_ms": NOW + 5}, "delayMs"),
        ({"send_at_ms": -3}, "sendAt"),
        ({"max_attempts": 21}, "maxAttempts"),
        ({"idempotency_key": "has space"}, "idempotencyKey"),
        ({"idempotency_key": "order-7\n"}, "idempotencyKey"),  # a trailing newline does not slip past
    ],
)
def test_bad_schedule_attempts_or_key_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    assert refused(channel="database", to="u1", **fields).field == field


@pytest.mark.parametrize(
    ("channel", "to", "size"),
    [("sms", "+4915112345678", 1601), ("browser", "u1", 3001), ("telegram", "42", 4096 * 10 + 100)],
)
def test_a_body_over_the_channel_limit_is_refused_naming_text(channel: str, to: str, size: int) -> None:
    assert refused(channel=channel, to=to, text="x" * size).field == "text"


def test_a_body_at_the_sms_limit_is_accepted() -> None:
    assert plan(channel="sms", to="+4915112345678", text="x" * 1600).text == "x" * 1600


def test_an_empty_body_without_a_template_is_refused_naming_text() -> None:
    assert refused(channel="email", to="a@example.com", text=" ").field == "text"


def test_a_template_renders_subject_text_and_escaped_html_for_email() -> None:
    data = {**WELCOME, "name": "<Ann & Bob>"}
    delivery = plan(channel="email", to="a@example.com", text="", template="welcome", data=data)
    assert delivery.subject == "Welcome to Acme, <Ann & Bob>"
    assert "Hello <Ann & Bob>," in delivery.text
    assert "<b>&lt;Ann &amp; Bob&gt;</b>" in delivery.html


def test_a_missing_template_variable_is_refused_naming_it() -> None:
    error = refused(channel="email", to="a@example.com", text="", template="welcome", data={"name": "Ann"})
    assert error.field == "data.company"
    assert error.details["missing"] == ["company", "login_url"]


def test_an_unknown_template_is_refused_naming_template() -> None:
    assert refused(channel="email", to="a@example.com", text="", template="nope").field == "template"


def test_a_template_name_with_a_trailing_newline_is_refused_naming_template() -> None:
    assert refused(channel="email", to="a@example.com", text="", template="welcome\n").field == "template"


def test_telegram_text_is_escaped_for_the_html_parse_mode() -> None:
    assert plan(channel="telegram", to="42", text="1 < 2 & <b>").parts == ("1 &lt; 2 &amp; &lt;b&gt;",)


def test_a_telegram_template_is_rendered_with_escaped_variables() -> None:
    data = {"severity": "<script>", "queue": "sales", "alert": "5 waiting"}
    delivery = plan(channel="telegram", to="42", text="", template="operator_alert", data=data)
    assert delivery.parts == ("&lt;script&gt; on queue sales: 5 waiting",)


def test_a_long_telegram_text_becomes_several_messages() -> None:
    text = "\n".join(["y" * 3000, "z" * 3000])
    assert plan(channel="telegram", to="42", text=text).parts == ("y" * 3000, "z" * 3000)


def test_max_attempts_defaults_to_the_channel_setting() -> None:
    assert plan(channel="database", to="u1").max_attempts == 5
    assert plan(channel="database", to="u1", max_attempts=2).max_attempts == 2
