"""Notify service settings, read from the environment once at start."""

from __future__ import annotations

from runtime.config import CommonSettings


class NotifySettings(CommonSettings):
    """Only the shared settings so far; the notify capability adds its own knobs here."""
