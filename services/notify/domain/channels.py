"""Channels, their recipients and their body limits.

A recipient is checked against its channel before anything is stored or queued: an email
address (RFC 5321 syntax, no DNS lookup), a Telegram chat id (an integer; negative for groups)
or ``@username``, a user id for Web Push and in-app, an E.164 phone number for SMS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from runtime.errors import InvalidArgument


class Channel(StrEnum):
    """The channel names of the HTTP API (``browser`` = Web Push, ``database`` = in-app)."""

    EMAIL = "email"
    TELEGRAM = "telegram"
    BROWSER = "browser"
    DATABASE = "database"
    SMS = "sms"

    @classmethod
    def parse(cls, value: str) -> Channel:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(c.value for c in cls)
            raise InvalidArgument("channel", f"unknown channel {value!r} (one of {names})") from None


@dataclass(frozen=True, slots=True)
class Limits:
    """Longest subject and body a channel accepts, in characters (web push: UTF-8 bytes)."""

    subject: int
    body: int


TELEGRAM_MESSAGE_CHARS = 4096
TELEGRAM_MAX_PARTS = 10

LIMITS: dict[Channel, Limits] = {
    # RFC 5322 caps a header line at 998 characters; bodies beyond 1 MB belong in an attachment store.
    Channel.EMAIL: Limits(subject=998, body=1_000_000),
    # A long text is split into messages of 4,096 characters; more than ten is a mistake, not a message.
    Channel.TELEGRAM: Limits(subject=0, body=TELEGRAM_MESSAGE_CHARS * TELEGRAM_MAX_PARTS),
    # The push service takes a 4,096-byte record; the JSON envelope and encryption need the rest.
    Channel.BROWSER: Limits(subject=200, body=3000),
    Channel.DATABASE: Limits(subject=500, body=20_000),
    # Twilio's Messages API refuses a Body over 1,600 characters.
    Channel.SMS: Limits(subject=0, body=1600),
}

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_CHAT_ID = re.compile(r"-?[1-9][0-9]{0,19}")
# Telegram usernames: 5-32 characters, letters, digits and underscores, starting with a letter.
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,31}")
_USER_ID = re.compile(r"[A-Za-z0-9_.:@\-]{1,128}")


def normalize_recipient(channel: Channel, to: str) -> str:
    """The recipient in its canonical spelling, or InvalidArgument('to') saying what it must be."""
    value = to.strip()
    if not value:
        raise InvalidArgument("to", "must not be empty")
    if channel is Channel.EMAIL:
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise InvalidArgument("to", f"{value!r} is not an email address: {exc}") from None
    if channel is Channel.TELEGRAM:
        if _CHAT_ID.fullmatch(value) or _USERNAME.fullmatch(value):
            return value
        raise InvalidArgument("to", f"{value!r} is not a Telegram chat id or @username")
    if channel is Channel.SMS:
        if _E164.fullmatch(value):
            return value
        raise InvalidArgument("to", f"{value!r} is not an E.164 phone number (+ and 7-15 digits)")
    if _USER_ID.fullmatch(value):
        return value
    raise InvalidArgument("to", f"{value!r} is not a user id (1-128 of A-Z a-z 0-9 _ . : @ -)")


def is_group_chat(chat: str) -> bool:
    """Telegram group and supergroup chat ids are negative."""
    return chat.startswith("-")


def check_lengths(channel: Channel, subject: str, body: str, html: str) -> None:
    limits = LIMITS[channel]
    if subject and limits.subject == 0:
        raise InvalidArgument("subject", f"the {channel} channel has no subject")
    if len(subject) > limits.subject and limits.subject:
        raise InvalidArgument("subject", f"is {len(subject)} characters; {channel} allows {limits.subject}")
    size = len(body.encode()) if channel is Channel.BROWSER else len(body)
    if size > limits.body:
        raise InvalidArgument("text", f"is {size} characters; {channel} allows {limits.body}")
    if len(html) > limits.body:
        raise InvalidArgument("html", f"is {len(html)} characters; {channel} allows {limits.body}")
