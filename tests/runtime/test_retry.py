"""RetryPolicy: how many attempts, how long before each retry, and the server's own delay."""

from __future__ import annotations

import random
import re
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.retry import RetryPolicy


class FixedDraw(random.Random):
    """A random source whose every draw is the same number: the jitter becomes predictable."""

    def __init__(self, draw: float) -> None:
        super().__init__()
        self.draw = draw

    def random(self) -> float:
        return self.draw


def exact(**fields: float) -> RetryPolicy:
    """A policy without jitter."""
    return RetryPolicy(jitter=0.0, **fields)  # type: ignore[arg-type]


def test_attempts_count_the_first_try() -> None:
    policy = RetryPolicy(attempts=3)
    assert [policy.allows(made) for made in (1, 2, 3, 4)] == [True, True, False, False]


def test_a_single_attempt_allows_no_retry() -> None:
    assert not RetryPolicy(attempts=1).allows(1)


def test_zero_attempts_means_retry_forever() -> None:
    assert RetryPolicy(attempts=0).allows(10**9)


def test_the_first_retry_waits_the_base_delay() -> None:
    assert exact(base=0.5, multiplier=2.0).delay_for(1) == 0.5


def test_each_retry_waits_multiplier_times_longer() -> None:
    policy = exact(base=0.5, multiplier=3.0, cap=1000.0)
    assert [policy.delay_for(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 13.5]


def test_the_delay_stops_growing_at_the_cap() -> None:
    policy = exact(base=0.5, multiplier=2.0, cap=3.0)
    assert [policy.delay_for(n) for n in (3, 4, 5)] == [2.0, 3.0, 3.0]


def test_a_retry_number_below_one_waits_like_the_first_retry() -> None:
    assert exact(base=0.5).delay_for(0) == 0.5


def test_huge_retry_numbers_wait_the_cap_without_overflow() -> None:
    assert exact(base=0.5, multiplier=10.0, cap=30.0).delay_for(10**9) == 30.0


def test_a_zero_base_never_waits_however_many_retries() -> None:
    policy = exact(base=0.0, multiplier=10.0, cap=30.0)
    assert [policy.delay_for(n) for n in (1, 10, 10**9)] == [0.0, 0.0, 0.0]


def test_a_constant_delay_stays_constant_however_many_retries() -> None:
    policy = exact(base=2.0, multiplier=1.0, cap=30.0)
    assert [policy.delay_for(n) for n in (1, 65, 66, 10**6)] == [2.0, 2.0, 2.0, 2.0]


def test_no_jitter_draw_waits_the_whole_delay() -> None:
    assert RetryPolicy(base=4.0, jitter=0.5, rng=FixedDraw(0.0)).delay_for(1) == 4.0


def test_jitter_shortens_the_delay_by_its_share_of_the_draw() -> None:
    assert RetryPolicy(base=4.0, jitter=0.5, rng=FixedDraw(0.5)).delay_for(1) == 3.0


def test_full_jitter_can_shorten_the_delay_almost_to_nothing() -> None:
    assert RetryPolicy(base=4.0, jitter=1.0, rng=FixedDraw(0.75)).delay_for(1) == 1.0


def test_jitter_never_pushes_a_capped_delay_above_the_cap() -> None:
    policy = RetryPolicy(base=4.0, cap=10.0, jitter=0.5, rng=FixedDraw(0.999))
    assert 5.0 <= policy.delay_for(20) <= 10.0


@given(
    base=st.floats(0, 100),
    cap=st.floats(0, 1000),
    multiplier=st.floats(1, 10),
    jitter=st.floats(0, 1),
    retry=st.integers(1, 200),
    seed=st.integers(0, 2**32),
)
def test_any_delay_lies_between_the_jittered_and_the_plain_backoff(
    base: float, cap: float, multiplier: float, jitter: float, retry: int, seed: int
) -> None:
    policy = RetryPolicy(base=base, cap=cap, multiplier=multiplier, jitter=jitter, rng=random.Random(seed))
    plain = exact(base=base, cap=cap, multiplier=multiplier).delay_for(retry)
    assert plain <= cap
    assert plain * (1 - jitter) <= policy.delay_for(retry) <= plain


def test_a_server_named_delay_wins_over_the_formula_unjittered() -> None:
    # Telegram's 429 says {"parameters": {"retry_after": 17}}.
    policy = RetryPolicy(base=0.5, jitter=1.0, rng=FixedDraw(0.9))
    assert policy.delay_for(3, server_delay=17) == 17.0


def test_a_server_named_delay_is_capped() -> None:
    assert RetryPolicy(server_delay_cap=300.0).delay_for(1, server_delay=86_400) == 300.0


def test_a_negative_server_delay_means_retry_now() -> None:
    assert RetryPolicy().delay_for(1, server_delay=-5) == 0.0


def test_a_server_delay_of_zero_means_retry_now() -> None:
    assert RetryPolicy(base=0.5).delay_for(1, server_delay=0) == 0.0


def test_the_next_delay_follows_the_attempts_made() -> None:
    assert exact(attempts=3, base=0.5).next_delay(2) == 1.0


def test_no_next_delay_once_the_attempts_are_used_up() -> None:
    assert RetryPolicy(attempts=3).next_delay(3) is None


def test_the_next_delay_is_the_servers_when_it_names_one() -> None:
    assert exact(attempts=3, base=0.5).next_delay(1, server_delay=17) == 17.0


def test_delays_lists_the_waits_between_the_attempts() -> None:
    assert list(exact(attempts=4, base=0.5, multiplier=2.0).delays()) == [0.5, 1.0, 2.0]


def test_a_single_attempt_has_no_delays() -> None:
    assert list(RetryPolicy(attempts=1).delays()) == []


def test_retrying_forever_never_runs_out_of_delays() -> None:
    waits = list(islice(exact(attempts=0, base=0.5, cap=2.0).delays(), 1000))
    assert waits[:3] == [0.5, 1.0, 2.0]
    assert len(waits) == 1000


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("attempts", -1, "attempts must be >= 0"),
        ("base", -0.1, "base and cap must be >= 0"),
        ("cap", -1.0, "base and cap must be >= 0"),
        ("jitter", -0.01, "jitter must be within [0, 1]"),
        ("jitter", 1.01, "jitter must be within [0, 1]"),
        ("multiplier", 0.99, "multiplier must be >= 1"),
    ],
)
def test_an_invalid_policy_is_refused_naming_the_rule(field: str, value: float, rule: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(rule)}$"):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("attempts", 0), ("base", 0.0), ("cap", 0.0), ("jitter", 0.0), ("jitter", 1.0), ("multiplier", 1.0)],
)
def test_a_policy_at_the_edge_of_the_valid_range_is_accepted(field: str, value: float) -> None:
    assert getattr(RetryPolicy(**{field: value}), field) == value  # type: ignore[arg-type]


def test_policies_compare_by_their_numbers_not_their_random_source() -> None:
    assert RetryPolicy(rng=random.Random(1)) == RetryPolicy(rng=random.Random(2))
    assert "rng" not in repr(RetryPolicy())


def test_the_defaults_try_five_times_from_half_a_second_up_to_thirty() -> None:
    policy = RetryPolicy()
    assert (policy.attempts, policy.base, policy.cap, policy.multiplier, policy.jitter, policy.server_delay_cap) == (
        5,
        0.5,
        30.0,
        2.0,
        0.5,
        300.0,
    )
