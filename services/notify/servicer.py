"""The gRPC face of the notify service: translate, delegate to :class:`NotifyCore`, translate back.

Errors are :mod:`runtime.errors` exceptions the runtime interceptor turns into statuses: bad input
is INVALID_ARGUMENT naming the field, an unknown notification NOT_FOUND, a channel without a
provider FAILED_PRECONDITION, Redis or the database unreachable UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from switchboard.common.v1 import common_pb2
from switchboard.notify.v1 import notify_pb2, notify_pb2_grpc

from runtime.auth import Scope, method_scopes
from runtime.errors import SwitchboardError
from runtime.grpc_types import ServicerContext as Context
from services.notify import convert
from services.notify.service import NotifyCore

SERVICE_NAME = notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name
SCOPES = method_scopes(
    notify_pb2.DESCRIPTOR.services_by_name["NotifyService"],
    {
        **dict.fromkeys(
            ("GetDeliveryStatus", "ListInApp", "ListNotifications", "WatchInApp", "GetVapidPublicKey"), Scope.READ
        ),
        **dict.fromkeys(
            ("Send", "SendBatch", "MarkRead", "RegisterPushSubscription", "UnregisterPushSubscription"), Scope.OPERATE
        ),
        # The SMS provider's delivery callbacks, relayed by whoever receives them (signed by the provider).
        "ReportSmsStatus": Scope.INTERNAL,
    },
)
"""The scope of every NotifyService method (the server refuses to start with one missing)."""


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, core: NotifyCore) -> None:
        self.core = core

    async def Send(self, request: notify_pb2.SendRequest, context: Context) -> notify_pb2.SendResponse:
        accepted = await self.core.send(convert.send_request(request.notification))
        return notify_pb2.SendResponse(notification_id=accepted.id, state=convert.STATE_PB[accepted.state])

    async def SendBatch(self, request: notify_pb2.SendBatchRequest, context: Context) -> notify_pb2.SendBatchResponse:
        results: list[notify_pb2.SendResult] = []
        requests = []
        for index, notification in enumerate(request.notifications):
            try:
                requests.append((index, convert.send_request(notification)))
            except SwitchboardError as exc:
                if request.all_or_nothing:
                    raise
                results.append(notify_pb2.SendResult(index=index, error=exc.message))
        outcomes = await self.core.send_batch([r for _, r in requests], all_or_nothing=request.all_or_nothing)
        for (index, _), outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, SwitchboardError):
                results.append(notify_pb2.SendResult(index=index, error=outcome.message))
            else:
                results.append(
                    notify_pb2.SendResult(
                        index=index, notification_id=outcome.id, state=convert.STATE_PB[outcome.state]
                    )
                )
        return notify_pb2.SendBatchResponse(results=sorted(results, key=lambda r: r.index))

    async def GetDeliveryStatus(
        self, request: notify_pb2.GetDeliveryStatusRequest, context: Context
    ) -> notify_pb2.DeliveryStatus:
        return convert.delivery_status(await self.core.status(request.notification_id))

    async def ListNotifications(
        self, request: notify_pb2.ListNotificationsRequest, context: Context
    ) -> notify_pb2.ListNotificationsResponse:
        channel = convert.channel_of(request.channel).value if request.channel else ""
        found = await self.core.recent(request.limit, channel)
        return notify_pb2.ListNotificationsResponse(notifications=[convert.delivery_status(n) for n in found])

    async def ListInApp(self, request: notify_pb2.ListInAppRequest, context: Context) -> notify_pb2.ListInAppResponse:
        messages, unread, total, page, size = await self.core.inbox(
            request.user_id,
            unread_only=request.unread_only,
            page=request.page.page,
            page_size=request.page.page_size,
        )
        return notify_pb2.ListInAppResponse(
            messages=[convert.inapp_message(m) for m in messages],
            unread_count=unread,
            page=common_pb2.PageInfo(page=page, page_size=size, total=total),
        )

    async def MarkRead(self, request: notify_pb2.MarkReadRequest, context: Context) -> notify_pb2.MarkReadResponse:
        updated = await self.core.mark_read(request.user_id, list(request.message_ids), all_messages=request.all)
        return notify_pb2.MarkReadResponse(updated=updated)

    async def WatchInApp(
        self, request: notify_pb2.WatchInAppRequest, context: Context
    ) -> AsyncIterator[notify_pb2.InAppMessage]:
        async for message in self.core.watch_inbox(request.user_id):
            yield convert.inapp_message_from_json(message)

    async def RegisterPushSubscription(
        self, request: notify_pb2.RegisterPushSubscriptionRequest, context: Context
    ) -> notify_pb2.RegisterPushSubscriptionResponse:
        subscription_id = await self.core.register_push(
            user_id=request.user_id,
            endpoint=request.endpoint,
            p256dh=request.p256dh,
            auth=request.auth,
            user_agent=request.user_agent,
        )
        return notify_pb2.RegisterPushSubscriptionResponse(subscription_id=subscription_id)

    async def UnregisterPushSubscription(
        self, request: notify_pb2.UnregisterPushSubscriptionRequest, context: Context
    ) -> notify_pb2.UnregisterPushSubscriptionResponse:
        removed = await self.core.unregister_push(subscription_id=request.subscription_id, endpoint=request.endpoint)
        return notify_pb2.UnregisterPushSubscriptionResponse(removed=removed)

    async def GetVapidPublicKey(
        self, request: notify_pb2.GetVapidPublicKeyRequest, context: Context
    ) -> notify_pb2.VapidPublicKey:
        return notify_pb2.VapidPublicKey(public_key=self.core.vapid_public_key())

    async def ReportSmsStatus(self, request: notify_pb2.SmsStatusReport, context: Context) -> notify_pb2.SmsStatusAck:
        found = await self.core.sms_status(request.url, dict(request.form), request.signature)
        return notify_pb2.SmsStatusAck(notification_id=found.id, state=convert.STATE_PB[found.state])
