"""The gateway's gRPC connections: one grpc.aio channel per backend, opened at startup, closed at shutdown.

The channels carry the internal identity (:func:`runtime.auth.internal_channel`): the gateway
authorizes each HTTP request itself, then calls the backends as a service.

:meth:`Backends.readiness` asks every backend's grpc.health.v1 ``Check`` (overall server,
service ``""``) at once, each bounded by a short deadline, and returns the ones that are not
SERVING with the reason — that is what ``/readyz`` reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchboard.media.v1 import media_pb2_grpc
from switchboard.notify.v1 import notify_pb2_grpc
from switchboard.queue.v1 import queue_pb2_grpc
from switchboard.status.v1 import status_pb2_grpc

from gateway.encoded_rows import EncodedRowsStub
from runtime.auth import internal_channel, internal_unary_channel
from runtime.config import CommonSettings

__all__ = ["Backends"]

_SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass(frozen=True, slots=True)
class BackendHealth:
    name: str
    address: str
    serving: bool
    reason: str


class Backends:
    """Owns the channels; hands out stubs."""

    def __init__(self, addresses: Mapping[str, str], settings: CommonSettings) -> None:
        self.addresses = dict(addresses)
        self.settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._status_reads_channel: grpc.aio.Channel | None = None
        self._status: status_pb2_grpc.StatusServiceAsyncStub | None = None
        self._status_rows: EncodedRowsStub | None = None
        self._queue_admin: queue_pb2_grpc.QueueAdminAsyncStub | None = None
        self._media: media_pb2_grpc.MediaServiceAsyncStub | None = None
        self._notify: notify_pb2_grpc.NotifyServiceAsyncStub | None = None

    async def open(self) -> None:
        for name, address in self.addresses.items():
            self._channels[name] = internal_channel(address, self.settings)
        self._status = status_pb2_grpc.StatusServiceStub(self.channel("status"))
        # The reads (every gRPC-answered status read, the snapshot polled by wall screens) on a
        # channel of their own without interceptors: one grpc.aio call each, metadata and span
        # made by the caller (runtime.grpc_client_calls.UnaryCaller); the connection is shared.
        self._status_reads_channel, caller = internal_unary_channel(self.addresses["status"], self.settings)
        self._status_rows = EncodedRowsStub(self._status_reads_channel, caller)
        if "queue_admin" in self._channels:
            self._queue_admin = queue_pb2_grpc.QueueAdminStub(self.channel("queue_admin"))
        if "media" in self._channels:
            self._media = media_pb2_grpc.MediaServiceStub(self.channel("media"))
        if "notify" in self._channels:
            self._notify = notify_pb2_grpc.NotifyServiceStub(self.channel("notify"))

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        if self._status_reads_channel is not None:
            channels.append(self._status_reads_channel)
            self._status_reads_channel = None
        self._status = None
        self._status_rows = None
        self._queue_admin = None
        self._media = None
        self._notify = None
        await asyncio.gather(*(channel.close(grace=None) for channel in channels))

    @property
    def is_open(self) -> bool:
        """Between :meth:`open` and :meth:`close`."""
        return bool(self._channels)

    def channel(self, name: str) -> grpc.aio.Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise RuntimeError(f"backend {name!r} is not open") from None

    @property
    def status(self) -> status_pb2_grpc.StatusServiceAsyncStub:
        if self._status is None:
            raise RuntimeError("backend 'status' is not open")
        return self._status

    @property
    def status_rows(self) -> EncodedRowsStub:
        """The status service's reads answering with the rows encoded (:mod:`gateway.encoded_rows`)."""
        if self._status_rows is None:
            raise RuntimeError("backend 'status' is not open")
        return self._status_rows

    @property
    def queue_admin(self) -> queue_pb2_grpc.QueueAdminAsyncStub:
        if self._queue_admin is None:
            raise RuntimeError("backend 'queue_admin' is not open")
        return self._queue_admin

    @property
    def media(self) -> media_pb2_grpc.MediaServiceAsyncStub:
        if self._media is None:
            raise RuntimeError("backend 'media' is not open")
        return self._media

    @property
    def notify(self) -> notify_pb2_grpc.NotifyServiceAsyncStub:
        if self._notify is None:
            raise RuntimeError("backend 'notify' is not open")
        return self._notify

    async def _check(self, name: str, deadline_seconds: float) -> BackendHealth:
        address = self.addresses[name]
        stub = health_pb2_grpc.HealthStub(self.channel(name))
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline_seconds)
        except grpc.aio.AioRpcError as error:
            reason = f"{error.code().name}: {error.details() or ''}".strip().rstrip(":")
            return BackendHealth(name, address, False, reason)
        status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return BackendHealth(name, address, reply.status == _SERVING, status_name)

    async def readiness(self, deadline_seconds: float) -> list[BackendHealth]:
        """Health of every backend, checked concurrently; each check takes at most ``deadline_seconds``."""
        return list(await asyncio.gather(*(self._check(name, deadline_seconds) for name in self.addresses)))
