"""A local SMS provider speaking Twilio's Messages API, with signed status callbacks.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` (basic auth: account sid + auth token;
form ``To``, ``From``, ``Body``, optional ``StatusCallback``): 401 for bad credentials, 400
``{"code": 21211}`` for a ``To`` that is not E.164, else 201 ``{"sid", "status": "queued", ...}``.
With a ``StatusCallback`` it then posts ``MessageSid``, ``MessageStatus`` (``delivered``, or
``undelivered`` with ``ErrorCode`` 30003 for the ``undeliverable`` numbers) signed with
``X-Twilio-Signature``, again after a back-off while the answer is not 2xx.
``GET /_log`` returns the messages and the callbacks' answers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from services.notify.domain.sms_signature import sign

E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass
class SmsState:
    account_sid: str
    auth_token: str
    undeliverable: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


CALLBACK_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0)


async def _report(state: SmsState, url: str, form: dict[str, str]) -> None:
    """Post the status report, as a handset's receipt arrives a moment after the send; a report
    that is not answered 2xx (the sender has not recorded the sid yet, a restart) is posted again."""
    headers = {"X-Twilio-Signature": sign(state.auth_token, url, form)}
    outcome: dict[str, Any] = {}
    for delay in CALLBACK_DELAYS_S:
        await asyncio.sleep(delay)
        try:
            async with aiohttp.ClientSession() as session, session.post(url, data=form, headers=headers) as response:
                outcome = {"sid": form["MessageSid"], "status": response.status}
        except aiohttp.ClientError as exc:
            outcome = {"sid": form["MessageSid"], "error": str(exc)}
        if 200 <= outcome.get("status", 0) < 300:
            break
    state.callbacks.append(outcome)


def create_app(state: SmsState) -> web.Application:
    expected_auth = "Basic " + base64.b64encode(f"{state.account_sid}:{state.auth_token}".encode()).decode()

    async def create_message(request: web.Request) -> web.Response:
        if request.match_info["sid"] != state.account_sid or request.headers.get("Authorization") != expected_auth:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        form = {k: str(v) for k, v in (await request.post()).items()}
        to, body = form.get("To", ""), form.get("Body", "")
        if not E164.fullmatch(to):
            return web.json_response(
                {"code": 21211, "message": f"The 'To' number {to} is not a valid phone number.", "status": 400},
                status=400,
            )
        if not body:
            return web.json_response({"code": 21602, "message": "Message body is required.", "status": 400}, status=400)
        sid = "SM" + os.urandom(16).hex()
        message = {"sid": sid, "to": to, "from": form.get("From", ""), "body": body, "status": "queued"}
        state.messages.append({**message, "at": time.time()})
        callback = form.get("StatusCallback")
        if callback:
            final = "undelivered" if to in state.undeliverable else "delivered"
            report = {"MessageSid": sid, "MessageStatus": final, "To": to, "AccountSid": state.account_sid}
            if final == "undelivered":
                report.update(ErrorCode="30003", ErrorMessage="Unreachable destination handset")
            task = asyncio.create_task(_report(state, callback, report))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        return web.json_response({**message, "account_sid": state.account_sid}, status=201)

    async def log(request: web.Request) -> web.Response:
        return web.json_response({"messages": state.messages, "callbacks": state.callbacks})

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", create_message)
    app.router.add_get("/_log", log)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="local Twilio-style SMS provider")
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--account-sid", default="AClocal")
    parser.add_argument("--auth-token", default="local-sms-token")
    args = parser.parse_args()
    web.run_app(create_app(SmsState(args.account_sid, args.auth_token)), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
