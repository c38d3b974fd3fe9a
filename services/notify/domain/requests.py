"""A send request checked and turned into the delivery the worker will make.

Everything a worker needs is decided here, at ``Send``: the recipient's canonical spelling, the
rendered subject/text/HTML (templates rendered now, so a missing variable is refused now), the
Telegram message parts, the queue priority, the due time and the attempts. A request that is
wrong in any way raises :class:`runtime.errors.InvalidArgument` naming the field (HTTP names:
``channel``, ``to``, ``template``, ``data.<variable>``, ``text``, ``html``, ``subject``,
``priority``, ``delayMs``, ``sendAt``, ``idempotencyKey``, ``maxAttempts``) and nothing is queued.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from runtime.errors import InvalidArgument
from services.notify.domain.channels import Channel, check_lengths, normalize_recipient
from services.notify.domain.schedule import Priority, due_at_ms
from services.notify.domain.telegram_text import telegram_messages
from services.notify.domain.templates import TemplateLibrary

MAX_ATTEMPTS = 20
MAX_DATA_ITEMS = 100
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One notification to one recipient, as the caller wrote it."""

    channel: str
    to: str
    subject: str = ""
    text: str = ""
    html: str = ""
    template: str = ""
    data: Mapping[str, str] = field(default_factory=dict)
    priority: str = ""
    delay_ms: int = 0
    send_at_ms: int = 0
    idempotency_key: str = ""
    max_attempts: int = 0


@dataclass(frozen=True, slots=True)
class Delivery:
    """What will be sent, to whom, when, and how often it may be tried.

    For Telegram ``parts`` are the messages in Telegram's HTML parse mode; for the other channels
    ``parts`` is empty and ``text``/``html`` are the bodies.
    """

    channel: Channel
    to: str
    subject: str
    text: str
    html: str
    data: Mapping[str, str]
    priority: Priority
    due_ms: int
    max_attempts: int
    idempotency_key: str
    template: str = ""
    parts: tuple[str, ...] = ()

    @property
    def scheduled(self) -> bool:
        return self.due_ms > 0

    @property
    def queue_priority(self) -> int:
        return self.priority.queue_priority


def plan_delivery(
    request: SendRequest, *, now_ms: int, templates: TemplateLibrary, default_attempts: Mapping[Channel, int]
) -> Delivery:
    """Check ``request`` and decide its delivery; ``due_ms`` is 0 when it is due at once."""
    channel = Channel.parse(request.channel)
    to = normalize_recipient(channel, request.to)
    priority = Priority.parse(request.priority)
    due = due_at_ms(request.delay_ms, request.send_at_ms, now_ms)
    if request.idempotency_key and not _IDEMPOTENCY_KEY.fullmatch(request.idempotency_key):
        raise InvalidArgument("idempotencyKey", "must be 1-200 printable ASCII characters without spaces")
    if not 0 <= request.max_attempts <= MAX_ATTEMPTS:
        raise InvalidArgument("maxAttempts", f"must be within 0..{MAX_ATTEMPTS} (0: the channel's default)")
    if len(request.data) > MAX_DATA_ITEMS:
        raise InvalidArgument("data", f"at most {MAX_DATA_ITEMS} entries")
    subject, text, html = _content(channel, request, templates)
    check_lengths(channel, subject, text, html)
    parts: tuple[str, ...] = ()
    if channel is Channel.TELEGRAM:
        parts = tuple(telegram_messages(html or text))
        text, html = "", ""
    return Delivery(
        channel=channel,
        to=to,
        subject=subject,
        text=text,
        html=html,
        data=dict(request.data),
        priority=priority,
        due_ms=due if due > now_ms else 0,
        max_attempts=request.max_attempts or default_attempts[channel],
        idempotency_key=request.idempotency_key,
        template=request.template,
        parts=parts,
    )


def _content(channel: Channel, request: SendRequest, templates: TemplateLibrary) -> tuple[str, str, str]:
    """Subject, text and HTML as they will be sent.

    Telegram reads its text in HTML parse mode: a plain ``text`` is escaped, an ``html`` body
    is the caller's markup, a template's text block is rendered with autoescaping.
    """
    if request.template:
        if request.text or request.html:
            raise InvalidArgument("template", "give either a template or text/html, not both")
        rendered = templates.render(request.template, request.data, text_as_html=channel is Channel.TELEGRAM)
        subject = request.subject or rendered.subject
        if channel in (Channel.TELEGRAM, Channel.SMS):
            subject = ""
        html = rendered.html if channel is Channel.EMAIL else ""
        return subject, rendered.text, html
    text, html = request.text, request.html
    if not text.strip() and not html.strip():
        raise InvalidArgument("text", "give a text, an html body or a template")
    if html and channel not in (Channel.EMAIL, Channel.TELEGRAM):
        raise InvalidArgument("html", f"the {channel} channel has no HTML body")
    if channel is Channel.TELEGRAM:
        return request.subject, (html_lib.escape(text, quote=False) if not html else ""), html
    if channel is Channel.EMAIL and not text.strip():
        raise InvalidArgument("text", "an email needs a plain-text part besides its HTML")
    return request.subject, text, html
