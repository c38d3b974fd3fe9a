"""Splitting a long Telegram text into messages of at most 4,096 characters.

Cuts fall on line boundaries, so a message never ends in the middle of a line; only a single
line longer than the limit is cut inside it (at the last space that fits, else exactly at the
limit). The newline or space at a cut is dropped, and so is a part that would hold only whitespace
(Telegram refuses empty messages); everything else of the text arrives, in order.
"""

from __future__ import annotations

from runtime.errors import InvalidArgument
from services.notify.domain.channels import TELEGRAM_MAX_PARTS, TELEGRAM_MESSAGE_CHARS


def split_text(text: str, limit: int = TELEGRAM_MESSAGE_CHARS) -> list[str]:
    """The messages ``text`` is sent as: ``[text]`` when it fits."""
    if limit < 2:
        raise ValueError("limit must be >= 2")
    parts: list[str] = []
    lines: list[str] = []
    size = 0  # len("\n".join(lines))

    def flush() -> None:
        nonlocal lines, size
        if lines:
            parts.append("\n".join(lines))
        lines, size = [], 0

    for line in text.split("\n"):
        while len(line) > limit:
            flush()
            space = line.rfind(" ", 1, limit + 1)
            cut = space if space > 0 else limit
            parts.append(line[:cut])
            line = line[cut + 1 :] if space > 0 else line[cut:]
        grown = size + len(line) + (1 if lines else 0)
        if grown > limit:
            flush()
            grown = len(line)
        lines.append(line)
        size = grown
    flush()
    return [part for part in parts if part.strip()] or [text[:limit]]


def telegram_messages(text: str) -> list[str]:
    """``split_text`` at Telegram's limit, refusing a text that needs too many messages."""
    parts = split_text(text)
    if len(parts) > TELEGRAM_MAX_PARTS:
        raise InvalidArgument("text", f"needs {len(parts)} Telegram messages; at most {TELEGRAM_MAX_PARTS}")
    return parts
