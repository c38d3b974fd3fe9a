"""`python -m services.media`: the media gRPC server.

The MediaService contract (protos/switchboard/media/v1/media.proto) is served so that clients can
be built against it now; until the media capability lands every RPC answers UNIMPLEMENTED,
which is what the generated base servicer does. Health and reflection are live.
"""

from __future__ import annotations

from switchboard.media.v1 import media_pb2, media_pb2_grpc

from runtime.grpc_server import GrpcService, run_service
from services.media.settings import MediaSettings

SERVICE_NAME = media_pb2.DESCRIPTOR.services_by_name["MediaService"].full_name


async def build(settings: MediaSettings) -> GrpcService:
    # The generated base answers UNIMPLEMENTED for every RPC; its stubs are abstract only for mypy.
    servicer = media_pb2_grpc.MediaServiceServicer()  # type: ignore[abstract]
    return GrpcService(
        name="media",
        address=settings.media_addr,
        register=lambda server: media_pb2_grpc.add_MediaServiceServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
    )


if __name__ == "__main__":
    run_service("media", MediaSettings, build)
