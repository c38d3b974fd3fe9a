"""Media service settings, read from the environment once at start."""

from __future__ import annotations

from runtime.config import CommonSettings


class MediaSettings(CommonSettings):
    """Only the shared settings so far; the media capability adds its own knobs here."""
