"""An idempotency key answers its first notification for 24 h; from then on it starts a new one
(in the database the service uses, with the clock given to the store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.notify.domain.requests import SendRequest
from services.notify.store import IDEMPOTENCY_WINDOW_MS
from tests.notify.harness import Notify, Providers, notify_settings, running_notify

T0 = 1_700_000_000_000


@pytest.fixture
async def idle_notify(redis_url: str, tmp_path: Path, providers: Providers) -> AsyncIterator[Notify]:
    async with running_notify(notify_settings(redis_url, tmp_path, providers), providers, workers=False) as notify:
        yield notify


async def test_a_key_answers_its_first_notification_for_24_hours_and_then_starts_a_new_one(
    idle_notify: Notify,
) -> None:
    core = idle_notify.app.core
    delivery = core.plan(SendRequest(channel="email", to="a@example.com", text="t", idempotency_key="order-1"))
    assert IDEMPOTENCY_WINDOW_MS == 24 * 3600 * 1000
    assert (await core.store.create("first", delivery, T0)).created
    within = await core.store.create("again", delivery, T0 + IDEMPOTENCY_WINDOW_MS - 1)
    assert (within.id, within.created) == ("first", False)
    after = await core.store.create("next-day", delivery, T0 + IDEMPOTENCY_WINDOW_MS)
    assert (after.id, after.created) == ("next-day", True)
    # SendBatch's keyed path keeps the same window.
    (batched,) = await core.store.create_many_keyed([("batch", delivery)], T0 + 2 * IDEMPOTENCY_WINDOW_MS - 1)
    assert (batched.id, batched.created) == ("next-day", False)
    (renewed,) = await core.store.create_many_keyed([("batch", delivery)], T0 + 2 * IDEMPOTENCY_WINDOW_MS)
    assert (renewed.id, renewed.created) == ("batch", True)
    assert (await core.store.get("first")).idempotency_key == ""
