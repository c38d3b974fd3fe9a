"""The budget a worker's jobs take their decoded sources' bytes from (services/media/domain/budget.py):
what fits is held at once, what does not waits its turn, in the order asked.

A waiting caller is observed through ``waiting`` (no sleeps, no timing): each test waits, with
a bound, until the thread it started is queued, then checks what it was let do."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from PIL import Image

from devsupport.waiting import wait_until_blocking
from services.media.domain.budget import MemoryBudget, decode_bytes
from tests.media.images import encoded, gradient

pytestmark = pytest.mark.timeout(30)


class Caller(threading.Thread):
    """A thread that holds ``amount`` from ``budget`` until told to give it back."""

    def __init__(self, budget: MemoryBudget, amount: int, entered: list[str] | None = None, name: str = "") -> None:
        super().__init__(daemon=True)
        self.budget, self.amount, self.entered, self.label = budget, amount, entered, name
        self.inside = threading.Event()
        self.leave = threading.Event()

    def run(self) -> None:
        with self.budget.held(self.amount):
            if self.entered is not None:
                self.entered.append(self.label)
            self.inside.set()
            self.leave.wait(20)


def queued(budget: MemoryBudget, count: int) -> Callable[[], bool]:
    return lambda: budget.waiting == count


def inside(caller: Caller) -> Caller:
    caller.start()
    assert caller.inside.wait(10)
    return caller


def test_holdings_that_fit_together_are_held_at_once() -> None:
    budget = MemoryBudget(100)
    callers = [inside(Caller(budget, 40)), inside(Caller(budget, 60))]
    assert budget.used == 100
    for caller in callers:
        caller.leave.set()
        caller.join(10)
    assert budget.used == 0


def test_a_holding_that_does_not_fit_waits_until_enough_is_given_back() -> None:
    budget = MemoryBudget(100)
    first = inside(Caller(budget, 70))
    second = Caller(budget, 40)
    second.start()
    wait_until_blocking(queued(budget, 1), within=10, what="a caller queued")
    assert not second.inside.is_set()
    first.leave.set()
    assert second.inside.wait(10)
    assert budget.used == 40
    second.leave.set()


def test_a_holding_over_the_limit_waits_for_everything_then_holds_the_whole_budget() -> None:
    budget = MemoryBudget(100)
    small = inside(Caller(budget, 1))
    huge = Caller(budget, 10_000)
    huge.start()
    wait_until_blocking(queued(budget, 1), within=10, what="a caller queued")
    assert not huge.inside.is_set()
    small.leave.set()
    assert huge.inside.wait(10)
    assert budget.used == 100
    huge.leave.set()


def test_callers_are_let_in_in_the_order_they_asked_so_a_big_one_is_not_overtaken() -> None:
    budget = MemoryBudget(100)  # no overtakes
    entered: list[str] = []
    running = inside(Caller(budget, 50, entered, "running"))
    big = Caller(budget, 80, entered, "big")
    big.start()
    wait_until_blocking(queued(budget, 1), within=10, what="a caller queued")
    small = Caller(budget, 10, entered, "small")  # it would fit now, but the big one asked first
    small.start()
    wait_until_blocking(queued(budget, 2), within=10, what="a caller queued")
    assert entered == ["running"]
    running.leave.set()
    assert big.inside.wait(10)
    assert small.inside.wait(10)
    assert entered == ["running", "big", "small"]
    big.leave.set()
    small.leave.set()


def test_callers_that_fit_go_ahead_of_one_that_does_not_as_many_times_as_allowed_and_no_more() -> None:
    budget = MemoryBudget(100, overtakes=2)
    entered: list[str] = []
    running = inside(Caller(budget, 50, entered, "running"))
    big = Caller(budget, 80, entered, "big")
    big.start()
    wait_until_blocking(queued(budget, 1), within=10, what="a caller queued")
    ahead = [inside(Caller(budget, 10, entered, f"small {n}")) for n in (1, 2)]  # they fit: in at once
    third = Caller(budget, 10, entered, "small 3")  # it fits too, but the big one was overtaken twice
    third.start()
    wait_until_blocking(queued(budget, 2), within=10, what="a caller queued")
    assert entered == ["running", "small 1", "small 2"]
    for caller in (running, *ahead):
        caller.leave.set()
    assert big.inside.wait(10)
    assert third.inside.wait(10)
    assert entered == ["running", "small 1", "small 2", "big", "small 3"]
    big.leave.set()
    third.leave.set()


def test_part_of_a_holding_given_back_early_lets_the_next_caller_in() -> None:
    budget = MemoryBudget(100)
    with ExitStack() as stack:
        holding = stack.enter_context(budget.held(90))
        waiting = Caller(budget, 50)
        waiting.start()
        wait_until_blocking(queued(budget, 1), within=10, what="a caller queued")
        holding.give_back(60)
        assert waiting.inside.wait(10)
        assert budget.used == 30 + 50
        waiting.leave.set()
        waiting.join(10)
    assert budget.used == 0


def test_what_is_held_is_given_back_when_the_block_raises() -> None:
    budget = MemoryBudget(100)
    with pytest.raises(RuntimeError), budget.held(80):
        raise RuntimeError("corrupt image")
    assert budget.used == 0


def test_before_large_is_called_when_a_large_holding_is_let_in_and_not_for_a_small_one() -> None:
    calls: list[int] = []
    budget = MemoryBudget(100, large=50, before_large=lambda: calls.append(budget.used))
    with budget.held(20):
        pass
    with budget.held(60):
        pass
    assert calls == [60]


def test_a_progressive_jpeg_costs_its_coefficients_besides_its_pixels() -> None:
    image = gradient((200, 100))
    baseline = Image.open(io.BytesIO(encoded(image, "JPEG")))
    progressive = Image.open(io.BytesIO(encoded(image, "JPEG", progressive=True)))
    assert decode_bytes(baseline, baseline.size) == 200 * 100 * 4
    assert decode_bytes(progressive, progressive.size) == 200 * 100 * 4 + 200 * 100 * 3 * 2
