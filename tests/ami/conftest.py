"""Fixtures of the pure AMI tests (their building blocks are in tests/ami/harness.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from tests.ami.harness import Replayed, replay_fixture


@pytest.fixture(scope="session")
def replay() -> Callable[[str], Replayed]:
    """``replay_fixture``, each recording replayed once per test session (tests only read it).

    Cached per session, not per process: a run that changes the code between sessions in one
    process (mutation testing forks one per mutant) replays again and sees the change.
    """
    return functools.cache(replay_fixture)
