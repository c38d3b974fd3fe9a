"""Entry point: ``python -m services.ami_ingest`` (IngestControl on AMI_INGEST_ADDR, default 127.0.0.1:50054).

Connects to the Asterisk at AMI_HOST:AMI_PORT when this replica leads, and streams state
changes into the status service at STATUS_ADDR.
"""

from __future__ import annotations

from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from runtime.auth import Scope, method_scopes
from runtime.grpc_server import GrpcService, run_service
from runtime.process import keep_freed_heap, settle_heap_for_bursts
from runtime.redis import redis_health_check
from services.ami_ingest.app import IngestApp
from services.ami_ingest.servicer import IngestControlServicer
from services.ami_ingest.settings import AmiIngestSettings

SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["IngestControl"].full_name
SCOPES = method_scopes(
    ingest_pb2.DESCRIPTOR.services_by_name["IngestControl"],
    {"GetIngestStatus": Scope.READ, "RequestResync": Scope.INTERNAL},
)


async def build(settings: AmiIngestSettings) -> GrpcService:
    app = IngestApp(settings)
    app.register_metrics()
    await app.start()
    settle_heap_for_bursts()  # a burst keeps thousands of parsed events alive at once
    keep_freed_heap()  # and frees them in waves: keep the heap mapped between bursts
    return grpc_service(app, settings)


def grpc_service(app: IngestApp, settings: AmiIngestSettings) -> GrpcService:
    """IngestControl over a started ``app`` (its shutdown hook stops the app)."""
    servicer = IngestControlServicer(app)
    return GrpcService(
        name="ami_ingest",
        address=settings.ami_ingest_addr,
        register=lambda server: ingest_pb2_grpc.add_IngestControlServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
        scopes=SCOPES,
        # Leadership and the ingest both live in Redis; Asterisk being away is reported by
        # GetIngestStatus and metrics, not by taking the replica out of service.
        health_checks={"redis": redis_health_check(app.redis)},
        tasks=app.tasks,  # a dead loop (ingest, publisher, election) turns liveness NOT_SERVING
        shutdown_hooks=[app.stop],
    )


if __name__ == "__main__":
    run_service("ami_ingest", AmiIngestSettings, build)
