"""Email over SMTP with aiosmtplib: multipart text + HTML, STARTTLS and AUTH when configured.

Connections are reused: each worker keeps up to ``pool_size`` open SMTP sessions and hands one
to each send (an SMTP session carries one transaction at a time). A session the server closed,
or that failed mid-transaction, is dropped and a fresh one is opened by the next send.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from services.notify.domain.outcomes import Outcome, classify_smtp
from services.notify.records import Notification
from services.notify.settings import NotifySettings


class EmailSender:
    def __init__(self, settings: NotifySettings, *, pool_size: int = 10) -> None:
        self.settings = settings
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(pool_size)
        self._tls = ssl.create_default_context(
            cafile=str(settings.smtp_tls_ca_file) if settings.smtp_tls_ca_file else None
        )

    def message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = notification.to
        message["Subject"] = notification.subject
        message["Message-ID"] = make_msgid(idstring=notification.id)
        message.set_content(notification.text)
        if notification.html:
            message.add_alternative(notification.html, subtype="html")
        return message

    async def send(self, notification: Notification) -> Outcome:
        message = self.message(notification)
        async with self._slots:
            try:
                client = await self._session()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                return _failure(exc)
            try:
                await client.send_message(message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await _discard(client)
                return _failure(exc)
            except BaseException:
                # Cut off mid-transaction (the provider timeout, a worker's stop): the session is
                # in an unknown state and nobody else holds it, so it is closed here, not left
                # open for the garbage collector (aiosmtplib does not close it on cancellation).
                client.close()
                raise
            self._idle.put_nowait(client)
        return Outcome.delivered(str(message["Message-ID"]))

    async def _session(self) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.notify_provider_timeout_s,
            start_tls=s.smtp_starttls,
            use_tls=False,
            tls_context=self._tls,
        )
        await client.connect()
        if s.smtp_username:
            try:
                await client.login(s.smtp_username, s.smtp_password)
            except BaseException:
                await _discard(client, polite=True)
                raise
        return client

    async def close(self) -> None:
        idle = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        try:
            for client in idle:
                await _discard(client, polite=True)
        finally:
            # A close cut short (a shutdown running out of time) still closes every session.
            for client in idle:
                client.close()


async def _discard(client: aiosmtplib.SMTP, *, polite: bool = False) -> None:
    try:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            if polite and client.is_connected:
                await client.quit()
    finally:
        client.close()


def _failure(exc: BaseException) -> Outcome:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        refused = exc.recipients[0]
        return classify_smtp(refused.code, refused.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return classify_smtp(exc.code, exc.message)
    return Outcome.transient(f"smtp: {type(exc).__name__}: {exc}")
