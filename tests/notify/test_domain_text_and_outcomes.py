"""Telegram splitting (property-tested) and the classification of provider answers."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.retry import RetryPolicy
from services.notify.domain.outcomes import (
    Action,
    OutcomeKind,
    classify_sms,
    classify_smtp,
    classify_telegram,
    classify_web_push,
    next_step,
)
from services.notify.domain.telegram_text import split_text

texts = st.text(alphabet=st.sampled_from("ab \n"), max_size=400)


@given(texts, st.integers(min_value=2, max_value=40))
def test_every_part_fits_the_limit(text: str, limit: int) -> None:
    assert all(len(part) <= limit for part in split_text(text, limit))


@given(texts, st.integers(min_value=2, max_value=40))
def test_splitting_loses_only_the_separators_at_cuts(text: str, limit: int) -> None:
    kept = "".join(split_text(text, limit))
    assert kept.replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


@given(st.lists(st.text(alphabet="ab", min_size=1, max_size=10), min_size=1, max_size=30))
def test_lines_that_fit_are_never_cut_inside(lines: list[str]) -> None:
    parts = split_text("\n".join(lines), 10)
    assert "\n".join(parts) == "\n".join(lines)


def test_a_text_within_the_limit_is_one_message() -> None:
    assert split_text("hello\nworld", 4096) == ["hello\nworld"]


def test_a_long_line_is_cut_at_its_last_space_that_fits() -> None:
    assert split_text("aa bb cc dd", 5) == ["aa bb", "cc dd"]


def test_telegram_ok_is_delivered_with_the_message_id() -> None:
    outcome = classify_telegram(200, {"ok": True, "result": {"message_id": 7}})
    assert (outcome.kind, outcome.provider_id) == (OutcomeKind.DELIVERED, "7")


def test_telegram_429_is_rate_limited_for_retry_after() -> None:
    payload = {"ok": False, "error_code": 429, "description": "Too Many Requests", "parameters": {"retry_after": 3}}
    outcome = classify_telegram(429, payload)
    assert (outcome.kind, outcome.retry_after_s) == (OutcomeKind.RATE_LIMITED, 3.0)


@pytest.mark.parametrize(
    ("status", "description"), [(403, "Forbidden: bot was blocked by the user"), (400, "Bad Request: chat not found")]
)
def test_telegram_blocked_or_unknown_chat_is_permanent_with_the_reason(status: int, description: str) -> None:
    outcome = classify_telegram(status, {"ok": False, "error_code": status, "description": description})
    assert outcome.kind is OutcomeKind.PERMANENT
    assert description in outcome.reason


@pytest.mark.parametrize("payload", [None, "<html>bad gateway</html>", [], {"result": 1}])
def test_a_telegram_answer_that_is_not_the_protocol_is_transient(payload: object) -> None:
    assert classify_telegram(502, payload).kind is OutcomeKind.TRANSIENT


def test_telegram_5xx_is_transient() -> None:
    assert classify_telegram(500, {"ok": False, "error_code": 500, "description": "x"}).kind is OutcomeKind.TRANSIENT


SMTP_CASES = [(250, "delivered"), (421, "transient"), (451, "transient"), (550, "permanent")]


@pytest.mark.parametrize(("code", "kind"), SMTP_CASES)
def test_smtp_replies_are_classified_by_class(code: int, kind: str) -> None:
    assert classify_smtp(code, "text").kind == kind


PUSH_CASES = [(201, "delivered"), (500, "transient"), (429, "transient"), (400, "permanent")]


@pytest.mark.parametrize(("status", "kind"), PUSH_CASES)
def test_web_push_answers_are_classified(status: int, kind: str) -> None:
    assert classify_web_push(status, "").kind == kind


@pytest.mark.parametrize("status", [404, 410])
def test_web_push_gone_is_permanent_and_drops_the_subscription(status: int) -> None:
    outcome = classify_web_push(status, "gone")
    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.drop_subscription


def test_sms_created_is_delivered_with_the_sid_and_a_refusal_keeps_the_reason() -> None:
    assert classify_sms(201, {"sid": "SM1"}).provider_id == "SM1"
    refused = classify_sms(400, {"code": 21211, "message": "Invalid 'To' Phone Number"})
    assert refused.kind is OutcomeKind.PERMANENT
    assert "Invalid 'To'" in refused.reason
    assert classify_sms(201, "garbage").kind is OutcomeKind.TRANSIENT


POLICY = RetryPolicy(attempts=5, base=2.0, cap=300.0, jitter=0.0, rng=random.Random(1))


def test_transient_failures_back_off_exponentially_from_two_seconds() -> None:
    delays = [next_step(classify_smtp(421, "busy"), n, POLICY).delay_s for n in range(1, 5)]
    assert delays == [2.0, 4.0, 8.0, 16.0]


def test_the_fifth_transient_failure_fails_with_the_reason() -> None:
    step = next_step(classify_smtp(421, "busy"), 5, POLICY)
    assert step.action is Action.FAIL
    assert step.reason == "gave up after 5 attempts: smtp 421: busy"


def test_a_permanent_failure_fails_at_once() -> None:
    assert next_step(classify_smtp(550, "no such user"), 1, POLICY).action is Action.FAIL


def test_a_rate_limit_requeues_for_retry_after_whatever_the_attempt() -> None:
    outcome = classify_telegram(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 3}})
    step = next_step(outcome, 5, POLICY)
    assert (step.action, step.delay_s) == (Action.REQUEUE, 3.0)


def test_a_delivery_is_done() -> None:
    assert next_step(classify_web_push(201, ""), 1, POLICY).action is Action.DONE
