"""``/api/notifications``, the in-app inbox and Web Push subscriptions: the notify service over HTTP/JSON.

- ``POST /api/notifications`` -> 202 ``{"notificationIds": [...]}``, one notification per
  recipient; a list of recipients is all or nothing (one bad ``to`` refuses the request, 400
  naming the field, nothing queued). With an ``idempotencyKey`` and several recipients, each
  recipient's notification is keyed ``<key>:<index>``, so repeating the request answers the same ids.
- ``GET /api/notifications/{id}``: the delivery status with every attempt; ``GET /api/notifications``
  the newest notifications (``limit``, ``channel``).
- ``GET /api/users/{userId}/inbox``, ``POST /api/users/{userId}/inbox/read`` and the live
  ``GET /api/users/{userId}/inbox/stream`` (Server-Sent Events: ``ready``, then ``message`` each).
- ``POST /api/push/subscriptions`` (the browser's PushSubscription JSON plus ``userId``),
  ``DELETE /api/push/subscriptions/{id}``, ``GET /api/push/vapid-public-key``.
- ``POST /api/notifications/sms/status``: the SMS provider's delivery-status callback. It carries
  no user credentials: the notify service authenticates it by the provider's ``X-Twilio-Signature``
  (HMAC of this URL and the form with the account's auth token) and refuses a bad one with 403.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

import grpc
import grpc.aio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from switchboard.common.v1 import common_pb2
from switchboard.notify.v1 import notify_pb2, notify_pb2_grpc

from gateway import sse_relay
from gateway.backend_calls import naming_json_field, rpc_timeout
from gateway.errors import error_body
from gateway.notify_json import (
    CHANNEL_PB,
    JSON_FIELD,
    PRIORITY_PB,
    RECIPIENT_FIELD,
    data_strings,
    message_json,
    status_json,
)
from gateway.responses import ok
from gateway.schemas_notify import (
    DeliveryStatus,
    Inbox,
    MarkedRead,
    NotificationIds,
    PushRegistered,
    PushRemoved,
    SmsStatusAck,
    VapidKey,
)
from gateway.settings import GatewaySettings
from runtime.auth import Scope
from runtime.auth.http import public, requires
from runtime.errors import InvalidArgument

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["notifications"])
T = TypeVar("T")
ChannelName = Literal["email", "telegram", "browser", "database", "sms"]
MAX_RECIPIENTS = 1000


class SendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    to: str | list[str] = Field(description="Email, Telegram chat id or @username, user id, or E.164 phone; or a list.")
    subject: str = ""
    text: str = ""
    html: str = ""
    template: str = Field(
        default="", description="A template of the notify service: welcome, reminder, operator_alert."
    )
    data: dict[str, Any] = Field(default_factory=dict)
    priority: Literal["low", "normal", "high", "critical"] = "normal"
    delayMs: int = Field(default=0, ge=0, le=2**62)
    sendAt: int = Field(default=0, ge=0, le=2**62, description="Epoch ms.")
    idempotencyKey: str = ""
    maxAttempts: int = Field(default=0, ge=0, le=20)


class MarkReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(default_factory=list)
    all: bool = False


class PushKeys(BaseModel):
    p256dh: str
    auth: str


class PushSubscriptionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a browser's PushSubscription JSON may grow fields

    userId: str
    endpoint: str
    keys: PushKeys
    expirationTime: int | None = None


def _stub(request: Request) -> notify_pb2_grpc.NotifyServiceAsyncStub:
    stub: notify_pb2_grpc.NotifyServiceAsyncStub = request.app.state.backends.notify
    return stub


def _notification(body: SendBody, to: str, key: str) -> notify_pb2.Notification:
    return notify_pb2.Notification(
        channel=CHANNEL_PB[body.channel],
        recipient=notify_pb2.Recipient(**{RECIPIENT_FIELD[body.channel]: to}),
        subject=body.subject,
        body=body.text,
        html_body=body.html,
        template=body.template,
        data=data_strings(body.data),
        priority=PRIORITY_PB[body.priority],
        delay_ms=body.delayMs,
        send_at_ms=body.sendAt,
        idempotency_key=key,
        max_attempts=body.maxAttempts,
    )


@router.post(
    "/notifications",
    response_model=NotificationIds,
    status_code=202,
    summary="Send a notification to one or more recipients",
    dependencies=[requires(Scope.OPERATE)],
)
async def send(request: Request, body: SendBody) -> JSONResponse:
    recipients = body.to if isinstance(body.to, list) else [body.to]
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise InvalidArgument("to", f"give 1 to {MAX_RECIPIENTS} recipients")
    if len(recipients) == 1:
        notification = _notification(body, recipients[0], body.idempotencyKey)
        reply = await naming_json_field(
            _stub(request).Send(notify_pb2.SendRequest(notification=notification), timeout=rpc_timeout(request)),
            JSON_FIELD,
        )
        ids = [reply.notification_id]
    else:
        keyed = [f"{body.idempotencyKey}:{i}" if body.idempotencyKey else "" for i in range(len(recipients))]
        batch = notify_pb2.SendBatchRequest(
            notifications=[_notification(body, to, key) for to, key in zip(recipients, keyed, strict=True)],
            all_or_nothing=True,
        )
        replies = await naming_json_field(_stub(request).SendBatch(batch, timeout=rpc_timeout(request)), JSON_FIELD)
        ids = [r.notification_id for r in replies.results]
    return JSONResponse({"success": True, "data": {"notificationIds": ids}}, status_code=202)


@router.get(
    "/notifications",
    response_model=list[DeliveryStatus],
    summary="The newest notifications with their delivery states",
    dependencies=[requires(Scope.READ)],
)
async def recent(
    request: Request, limit: int = Query(default=50, ge=1, le=500), channel: ChannelName | None = None
) -> JSONResponse:
    ask = notify_pb2.ListNotificationsRequest(
        limit=limit, channel=CHANNEL_PB[channel] if channel else notify_pb2.NOTIFICATION_CHANNEL_UNSPECIFIED
    )
    reply = await naming_json_field(_stub(request).ListNotifications(ask, timeout=rpc_timeout(request)), JSON_FIELD)
    items = [status_json(s) for s in reply.notifications]
    return ok(items, count=len(items))


@router.post(
    "/notifications/sms/status",
    response_model=SmsStatusAck,
    summary="The SMS provider's delivery-status callback (signed)",
    dependencies=[public()],
)
async def sms_status(request: Request) -> JSONResponse:
    # Parsed by hand: a form of a few short fields needs no multipart parser.
    form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    report = notify_pb2.SmsStatusReport(
        url=str(request.url), form=form, signature=request.headers.get("X-Twilio-Signature", "")
    )
    ack = await naming_json_field(_stub(request).ReportSmsStatus(report, timeout=rpc_timeout(request)), JSON_FIELD)
    return JSONResponse({"success": True, "data": {"notificationId": ack.notification_id}})


@router.get(
    "/notifications/{notification_id}",
    response_model=DeliveryStatus,
    summary="A notification's delivery status and attempts",
    dependencies=[requires(Scope.READ)],
)
async def delivery_status(request: Request, notification_id: str) -> JSONResponse:
    ask = notify_pb2.GetDeliveryStatusRequest(notification_id=notification_id)
    reply = await naming_json_field(_stub(request).GetDeliveryStatus(ask, timeout=rpc_timeout(request)), JSON_FIELD)
    return JSONResponse({"success": True, "data": status_json(reply)})


@router.get(
    "/users/{user_id}/inbox",
    response_model=Inbox,
    summary="A user's in-app messages, newest first, and the unread count",
    dependencies=[requires(Scope.READ)],
)
async def inbox(
    request: Request,
    user_id: str,
    unreadOnly: bool = False,
    page: int = Query(default=1, ge=1, le=2**31 - 1),
    pageSize: int = Query(default=20, ge=1, le=200),
) -> JSONResponse:
    ask = notify_pb2.ListInAppRequest(
        user_id=user_id, unread_only=unreadOnly, page=common_pb2.PageRequest(page=page, page_size=pageSize)
    )
    reply = await naming_json_field(_stub(request).ListInApp(ask, timeout=rpc_timeout(request)), JSON_FIELD)
    data = {"messages": [message_json(m) for m in reply.messages], "unreadCount": reply.unread_count}
    page_info = {"page": reply.page.page, "pageSize": reply.page.page_size, "total": reply.page.total}
    return ok(data, count=len(reply.messages), page=page_info)


@router.post(
    "/users/{user_id}/inbox/read",
    response_model=MarkedRead,
    summary="Mark some or all of a user's messages read",
    dependencies=[requires(Scope.OPERATE)],
)
async def mark_read(request: Request, user_id: str, body: MarkReadBody) -> JSONResponse:
    ask = notify_pb2.MarkReadRequest(user_id=user_id, message_ids=body.ids, all=body.all)
    reply = await naming_json_field(_stub(request).MarkRead(ask, timeout=rpc_timeout(request)), JSON_FIELD)
    return JSONResponse({"success": True, "data": {"updated": reply.updated}})


def _frame(message: notify_pb2.InAppMessage) -> ServerSentEvent:
    return sse_relay.event("message", message_json(message))


@router.get(
    "/users/{user_id}/inbox/stream",
    response_class=EventSourceResponse,
    summary="A user's new in-app messages as Server-Sent Events",
    dependencies=[requires(Scope.READ)],
)
async def inbox_stream(request: Request, user_id: str) -> EventSourceResponse:
    settings: GatewaySettings = request.app.state.settings
    call = _stub(request).WatchInApp(notify_pb2.WatchInAppRequest(user_id=user_id))
    return EventSourceResponse(sse_relay.relay(call, _frame), ping=int(settings.sse_ping_seconds))


@router.post(
    "/push/subscriptions",
    response_model=PushRegistered,
    status_code=201,
    summary="Register a browser's Web Push subscription",
    dependencies=[requires(Scope.OPERATE)],
)
async def register_push(request: Request, body: PushSubscriptionBody) -> JSONResponse:
    ask = notify_pb2.RegisterPushSubscriptionRequest(
        user_id=body.userId,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        user_agent=request.headers.get("user-agent", ""),
    )
    reply = await naming_json_field(
        _stub(request).RegisterPushSubscription(ask, timeout=rpc_timeout(request)), JSON_FIELD
    )
    return JSONResponse({"success": True, "data": {"subscriptionId": reply.subscription_id}}, status_code=201)


@router.delete(
    "/push/subscriptions/{subscription_id}",
    response_model=PushRemoved,
    summary="Remove a Web Push subscription",
    dependencies=[requires(Scope.OPERATE)],
)
async def unregister_push(request: Request, subscription_id: str) -> JSONResponse:
    ask = notify_pb2.UnregisterPushSubscriptionRequest(subscription_id=subscription_id)
    reply = await naming_json_field(
        _stub(request).UnregisterPushSubscription(ask, timeout=rpc_timeout(request)), JSON_FIELD
    )
    if not reply.removed:
        return JSONResponse(error_body(grpc.StatusCode.NOT_FOUND, f"no push subscription {subscription_id!r}"), 404)
    return JSONResponse({"success": True, "data": {"removed": True}})


@router.get(
    "/push/vapid-public-key",
    response_model=VapidKey,
    summary="The VAPID public key (PushManager.subscribe's applicationServerKey)",
    dependencies=[requires(Scope.READ)],
)
async def vapid_public_key(request: Request) -> JSONResponse:
    reply = await naming_json_field(
        _stub(request).GetVapidPublicKey(notify_pb2.GetVapidPublicKeyRequest(), timeout=rpc_timeout(request)),
        JSON_FIELD,
    )
    return JSONResponse({"success": True, "data": {"publicKey": reply.public_key}})
