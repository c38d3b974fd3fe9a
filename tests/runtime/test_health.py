"""Health status comes from the checks, re-run periodically, and is NOT_SERVING for good on shutdown."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2

from devsupport.waiting import wait_until
from runtime.health import LIVENESS_SERVICE, HealthReporter, run_check

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def status_of(reporter: HealthReporter, service: str = "") -> int:
    reply = await reporter.servicer.Check(health_pb2.HealthCheckRequest(service=service), None)
    return int(reply.status)


class Switch:
    """A dependency that is up or down on demand."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise ConnectionError("connection refused")


async def test_passing_checks_mean_serving_for_every_service() -> None:
    reporter = HealthReporter(["pkg.A", "pkg.B"], {"redis": Switch(), "db": Switch()})
    assert await reporter.evaluate() is True
    assert [await status_of(reporter, name) for name in ("", "pkg.A", "pkg.B")] == [SERVING] * 3


async def test_one_failing_check_means_not_serving_and_names_it() -> None:
    db = Switch()
    db.up = False
    reporter = HealthReporter(["pkg.A"], {"redis": Switch(), "db": db})
    assert await reporter.evaluate() is False
    assert await status_of(reporter) == NOT_SERVING
    assert await status_of(reporter, "pkg.A") == NOT_SERVING
    assert reporter.failures == {"db": "ConnectionError: connection refused"}


async def test_no_checks_means_serving() -> None:
    reporter = HealthReporter(["pkg.A"])
    assert await reporter.evaluate() is True


async def test_status_is_not_serving_before_the_first_evaluation() -> None:
    reporter = HealthReporter(["pkg.A"], {"slow": Switch()})
    for name in reporter.service_names:
        await reporter.servicer.set(name, NOT_SERVING)
    assert await status_of(reporter) == NOT_SERVING


async def status_becomes(reporter: HealthReporter, wanted: int, within: float = 5.0) -> None:
    """The background loop reports ``wanted`` within ``within`` seconds (checks run every 20 ms;
    the margin is for a loaded machine, a healthy run takes one or two checks)."""

    async def reported() -> bool:
        return await status_of(reporter) == wanted

    await wait_until(reported, within=within, what=f"health status {wanted}", interval=0.01)


async def test_background_loop_follows_the_dependency() -> None:
    redis = Switch()
    reporter = HealthReporter(["pkg.A"], {"redis": redis}, interval=0.02)
    await reporter.start()
    try:
        assert await status_of(reporter) == SERVING
        redis.up = False
        await status_becomes(reporter, NOT_SERVING)
        redis.up = True
        await status_becomes(reporter, SERVING)
        assert redis.calls >= 3
    finally:
        await reporter.shutdown()


async def test_shutdown_is_not_serving_even_when_checks_pass() -> None:
    reporter = HealthReporter(["pkg.A"], {"redis": Switch()}, interval=0.02)
    await reporter.start()
    await reporter.shutdown()
    await reporter.evaluate()
    assert await status_of(reporter) == NOT_SERVING
    assert await status_of(reporter, "pkg.A") == NOT_SERVING


async def test_check_that_hangs_fails_by_timeout() -> None:
    async def hangs() -> None:
        await asyncio.sleep(10)  # the dependency that never answers: the check's timeout ends it

    assert await run_check(hangs, 0.05) == "timed out after 0.05s"


async def test_check_returning_false_fails() -> None:
    async def says_no() -> bool:
        return False

    async def says_yes() -> bool:
        return True

    assert await run_check(says_no, 1) == "check returned False"
    assert await run_check(says_yes, 1) is None


async def test_liveness_stays_serving_while_a_dependency_is_down() -> None:
    redis = Switch()
    redis.up = False
    reporter = HealthReporter(["pkg.A"], {"redis": redis}, interval=0.05)
    await reporter.start()
    try:
        assert await status_of(reporter) == NOT_SERVING
        assert await status_of(reporter, LIVENESS_SERVICE) == SERVING
    finally:
        await reporter.shutdown()
    assert await status_of(reporter, LIVENESS_SERVICE) == NOT_SERVING
