"""`python -m services.notify`: the notify gRPC server.

The NotifyService contract (protos/switchboard/notify/v1/notify.proto) is served so that clients can
be built against it now; until the notify capability lands every RPC answers UNIMPLEMENTED,
which is what the generated base servicer does. Health and reflection are live.
"""

from __future__ import annotations

from switchboard.notify.v1 import notify_pb2, notify_pb2_grpc

from runtime.grpc_server import GrpcService, run_service
from services.notify.settings import NotifySettings

SERVICE_NAME = notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name


async def build(settings: NotifySettings) -> GrpcService:
    # The generated base answers UNIMPLEMENTED for every RPC; its stubs are abstract only for mypy.
    servicer = notify_pb2_grpc.NotifyServiceServicer()  # type: ignore[abstract]
    return GrpcService(
        name="notify",
        address=settings.notify_addr,
        register=lambda server: notify_pb2_grpc.add_NotifyServiceServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
    )


if __name__ == "__main__":
    run_service("notify", NotifySettings, build)
