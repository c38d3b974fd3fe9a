"""Providers at their edges: SMTP with STARTTLS and AUTH, a wrong password, a provider that hangs,
one that answers garbage, one that cannot be reached."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web
from switchboard.notify.v1 import notify_pb2

from services.notify.local.http import start
from services.notify.local.smtp_sink import SmtpSink
from tests.notify.harness import Providers, notify_settings, running_notify

EMAIL = notify_pb2.NOTIFICATION_CHANNEL_EMAIL
TELEGRAM = notify_pb2.NOTIFICATION_CHANNEL_TELEGRAM
SMS = notify_pb2.NOTIFICATION_CHANNEL_SMS


async def test_email_goes_over_starttls_with_auth(redis_url: str, tmp_path: Path, providers: Providers) -> None:
    sink = SmtpSink(tls_dir=tmp_path / "tls", username="mailer", password="s3cret").start()
    try:
        settings = notify_settings(
            redis_url,
            tmp_path,
            providers,
            smtp_port=sink.port,
            smtp_starttls=True,
            smtp_username="mailer",
            smtp_password="s3cret",
            smtp_tls_ca_file=sink.cert_path,
            smtp_from="alerts@acme.example",
        )
        async with running_notify(settings, providers) as notify:
            nid = await notify.send(channel=EMAIL, recipient=notify_pb2.Recipient(email="a@example.com"), body="hi")
            status = await notify.settled(nid)
        assert status.state == notify_pb2.DELIVERY_STATE_DELIVERED, status.last_error
        (mail,) = await asyncio.to_thread(sink.wait_for, 1)
        assert mail.rcpt_tos == ["a@example.com"]
        assert (mail.mail_from, mail.message["From"]) == ("alerts@acme.example", "alerts@acme.example")
        assert sink.handler.logins == 1
    finally:
        sink.stop()


async def test_a_refused_smtp_login_fails_with_the_servers_reason(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    sink = SmtpSink(tls_dir=tmp_path / "tls", username="mailer", password="s3cret").start()
    try:
        settings = notify_settings(
            redis_url,
            tmp_path,
            providers,
            smtp_port=sink.port,
            smtp_starttls=True,
            smtp_username="mailer",
            smtp_password="wrong",
            smtp_tls_ca_file=sink.cert_path,
        )
        async with running_notify(settings, providers) as notify:
            nid = await notify.send(channel=EMAIL, recipient=notify_pb2.Recipient(email="a@example.com"), body="hi")
            status = await notify.settled(nid)
        assert status.state == notify_pb2.DELIVERY_STATE_FAILED
        assert "535" in status.last_error
        assert sink.received == []
    finally:
        sink.stop()


async def test_an_smtp_server_that_never_answers_the_message_is_cut_off_and_its_connection_closed(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    # Answers the envelope, then holds the message: the provider timeout cuts the send off in the
    # middle of its SMTP transaction. That session must be closed at once, not left open until the
    # garbage collector finds it (a ResourceWarning in whichever test runs then).
    in_data, connection_closed = asyncio.Event(), asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answers = {b"EHLO": b"250 stalling\r\n", b"MAIL": b"250 OK\r\n", b"RCPT": b"250 OK\r\n"}
        writer.write(b"220 stalling ESMTP\r\n")
        try:
            while line := await reader.readline():
                if line[:4].upper() == b"DATA" and not in_data.is_set():
                    in_data.set()
                    writer.write(b"354 go ahead\r\n")
                elif not in_data.is_set():
                    writer.write(answers.get(line[:4].upper(), b"502 not here\r\n"))
            connection_closed.set()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        settings = notify_settings(redis_url, tmp_path, providers, smtp_port=port, notify_provider_timeout_s=2.0)
        async with running_notify(settings, providers) as notify:
            nid = await notify.send(
                channel=EMAIL, recipient=notify_pb2.Recipient(email="a@example.com"), body="hi", max_attempts=1
            )
            status = await notify.settled(nid)
            assert in_data.is_set()
            # Still inside the worker's life: only the send's own cleanup can have closed it.
            await asyncio.wait_for(connection_closed.wait(), 20)
    finally:
        server.close()
        await server.wait_closed()
    assert status.state == notify_pb2.DELIVERY_STATE_FAILED
    assert "did not answer within 2 s" in status.last_error


async def test_a_provider_that_hangs_is_cut_off_and_retried_and_garbage_is_transient(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    calls: list[str] = []
    release, hang_ended = asyncio.Event(), asyncio.Event()

    async def misbehave(request: web.Request) -> web.Response:
        calls.append(request.path)
        if len(calls) == 1:
            # Hangs (until the test ends): the worker's timeout cuts it off.
            try:
                await asyncio.wait_for(release.wait(), 30)
            finally:
                hang_ended.set()
        return web.Response(status=502, text="<html>bad gateway</html>")

    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", misbehave)
    server = await start(app)
    try:
        settings = notify_settings(
            redis_url, tmp_path, providers, telegram_api_url=server.url, notify_provider_timeout_s=0.5
        )
        async with running_notify(settings, providers) as notify:
            nid = await notify.send(
                channel=TELEGRAM, recipient=notify_pb2.Recipient(telegram_chat_id="7"), body="hi", max_attempts=2
            )
            status = await notify.settled(nid)
    finally:
        release.set()
        await asyncio.wait_for(hang_ended.wait(), 20)  # the hanging handler ends before the server stops
        await server.stop()
    assert status.state == notify_pb2.DELIVERY_STATE_FAILED
    assert [a.ok for a in status.attempts] == [False, False]
    assert "did not answer within 0.5 s" in status.attempts[0].error
    assert "without a Bot API body" in status.attempts[1].error


async def test_a_hanging_push_service_does_not_make_the_users_other_device_get_the_push_twice(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    release, hang_ended = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(release.wait(), 30)
        finally:
            hang_ended.set()
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/push/{id}", hang)
    server = await start(app)
    try:
        settings = notify_settings(redis_url, tmp_path, providers, notify_provider_timeout_s=1.0)
        async with running_notify(settings, providers) as notify:
            answering, other = await providers.new_push_subscription(), await providers.new_push_subscription()
            for endpoint, keys in (
                (answering["endpoint"], answering["keys"]),  # pushed to first: subscriptions go in order
                (f"{server.url}/push/{other['id']}", other["keys"]),
            ):
                await notify.stub.RegisterPushSubscription(
                    notify_pb2.RegisterPushSubscriptionRequest(
                        user_id="two-devices", endpoint=endpoint, p256dh=keys["p256dh"], auth=keys["auth"]
                    ),
                    timeout=10,
                )
            nid = await notify.send(
                channel=notify_pb2.NOTIFICATION_CHANNEL_WEB_PUSH,
                recipient=notify_pb2.Recipient(user_id="two-devices"),
                subject="s",
                body="once",
                max_attempts=3,
            )
            status = await notify.settled(nid)
    finally:
        release.set()
        await asyncio.wait_for(hang_ended.wait(), 20)
        await server.stop()
    assert status.state == notify_pb2.DELIVERY_STATE_DELIVERED
    assert [(a.attempt, a.ok) for a in status.attempts] == [(1, True)]
    assert len(providers.push.received) == 1


async def test_a_provider_that_cannot_be_reached_is_a_transient_failure_retried_until_its_attempts_are_used(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    # A port bound but not listening refuses every connection, and no other process can take it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        settings = notify_settings(
            redis_url,
            tmp_path,
            providers,
            smtp_port=port,
            telegram_api_url=f"http://127.0.0.1:{port}",
            sms_api_url=f"http://127.0.0.1:{port}",
        )
        async with running_notify(settings, providers) as notify:
            sent = [
                await notify.send(channel=channel, recipient=recipient, body="hi", max_attempts=2)
                for channel, recipient in (
                    (EMAIL, notify_pb2.Recipient(email="a@example.com")),
                    (TELEGRAM, notify_pb2.Recipient(telegram_chat_id="7")),
                    (SMS, notify_pb2.Recipient(phone="+4915112345678")),
                )
            ]
            settled = [await notify.settled(nid) for nid in sent]
    for status in settled:
        assert status.state == notify_pb2.DELIVERY_STATE_FAILED
        assert [a.ok for a in status.attempts] == [False, False], status  # retried, not failed at once
        assert all("Connect" in a.error for a in status.attempts), status  # the refused connection, kept
