"""Wiring of one ami_ingest replica: leadership → AMI client → ingest loop → status publisher.

Every replica campaigns for the lease of its Asterisk server (:mod:`leader`). Only the leader
connects to Asterisk; a standby holds no AMI session at all, so Asterisk sees exactly one
consumer. On election the replica starts from nothing: it connects, resyncs, and publishes its
first complete picture with its new fencing token. On losing the lease it disconnects and
forgets its state. ``RequestResync`` may land on any replica: it is broadcast over Redis and
acted on by whichever replica leads.

Its loops (the ingest loop, the status publisher, the election, the resync listener, and while
leading the AMI pump) are supervised (:mod:`runtime.supervision`): one that dies turns
``liveness`` NOT_SERVING, so the pod is restarted instead of leading with a dead loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from redis.exceptions import RedisError
from switchboard.ingest.v1 import ingest_pb2
from switchboard.status.v1 import status_pb2_grpc

from runtime.auth import internal_channel
from runtime.logging import get_logger
from runtime.redis import create_redis
from runtime.retry import RetryPolicy
from runtime.supervision import TaskSupervisor
from services.ami_ingest import keys
from services.ami_ingest.ami.client import AmiClient, AmiClientConfig
from services.ami_ingest.convert import encode_changes
from services.ami_ingest.domain.model import StateChange
from services.ami_ingest.ingestor import Ingestor, cancel_quietly
from services.ami_ingest.leader import LeaderElector
from services.ami_ingest.metrics import CONNECTED, LEADER, register_input_quality
from services.ami_ingest.publisher import StatusPublisher
from services.ami_ingest.settings import AmiIngestSettings

log = get_logger("ami_ingest.app")

_STATES = ingest_pb2.ConnectionState


class IngestApp:
    def __init__(self, settings: AmiIngestSettings) -> None:
        self.settings = settings
        self.source_id = settings.source_id
        self.redis = create_redis(settings.redis_url, client_name="ami_ingest")
        # Subscriptions block on reads: a separate connection without a socket timeout.
        self._pubsub_redis = create_redis(settings.redis_url, socket_timeout=None, client_name="ami_ingest-sub")
        self._status_channel = internal_channel(settings.status_addr, settings)
        self.publisher: StatusPublisher[StateChange] = StatusPublisher(
            status_pb2_grpc.StatusServiceStub(self._status_channel),
            source_id=self.source_id,
            snapshot=lambda: self.ingestor.full_state(),
            encode=encode_changes,
            heartbeat_interval=settings.ingest_heartbeat_seconds,
        )
        self.ingestor = Ingestor(self.publisher)
        self.elector = LeaderElector(
            self.redis, self.source_id, lease_ms=settings.ingest_lease_ms, poll_interval=settings.ingest_poll_seconds
        )
        self.client: AmiClient | None = None
        self.connected_since = 0.0
        self._pump: asyncio.Task[None] | None = None
        self.tasks = TaskSupervisor()

    def register_metrics(self) -> None:
        """Expose input-quality counters (once per process: Prometheus' registry is global)."""
        register_input_quality(
            lambda: self.ingestor.normalizer.unknown,
            lambda: self.client.parser_malformed if self.client else self.ingestor.normalizer.invalid,
            applied=lambda: self.ingestor.applied,
        )

    async def start(self) -> None:
        self.tasks.spawn(self.ingestor.run(), "ingest-loop")
        self.tasks.spawn(self.publisher.run(), "status-publisher")
        self.tasks.spawn(self.elector.run(self._on_elected, self._on_deposed), "leader-election")
        self.tasks.spawn(self._listen_for_resync_requests(), "resync-requests")
        log.info("ingest started", source=self.source_id, status_addr=self.settings.status_addr)

    async def stop(self) -> None:
        self.tasks.close()  # the loops end on purpose from here on
        await self.elector.stop()
        await self._stop_client()
        await self.publisher.stop()
        self.ingestor.stop()
        await self.tasks.stop()
        await self._status_channel.close()
        await self.redis.aclose()
        await self._pubsub_redis.aclose()

    # -- leadership ------------------------------------------------------------------------

    async def _on_elected(self, token: int) -> None:
        LEADER.set(1)
        self.ingestor.reset()
        self.publisher.set_fencing_token(token)
        config = AmiClientConfig(
            host=self.settings.ami_host,
            port=self.settings.ami_port,
            username=self.settings.ami_username,
            secret=self.settings.ami_secret,
            auth=self.settings.ami_auth,
            ping_interval=self.settings.ami_ping_interval_seconds,
            ping_timeout=self.settings.ami_ping_timeout_seconds,
            tls=self.settings.tls_context(),
            tls_server_name=self.settings.ami_tls_server_name,
        )
        self.client = AmiClient(
            config,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            read_gate=self.ingestor.room,
            tasks=self.tasks,  # its reconnect loop, as "ami-client"
        )
        self.client.start()
        self._pump = self.tasks.spawn(self.ingestor.pump(self.client), "ami-pump")

    async def _on_deposed(self, token: int) -> None:
        LEADER.set(0)
        self.publisher.set_fencing_token(0)
        await self._stop_client()
        self.ingestor.reset()

    async def _stop_client(self) -> None:
        client, self.client = self.client, None
        self.tasks.release(self._pump)  # it ends once its client is closed
        if client is not None:
            await client.close()
        await cancel_quietly(self._pump)
        self._pump = None
        CONNECTED.set(0)

    async def _on_connect(self, client: AmiClient) -> None:
        CONNECTED.set(1)
        self.connected_since = time.time()
        await self.ingestor.resync(client)

    async def _on_disconnect(self, client: AmiClient) -> None:
        CONNECTED.set(0)
        self.connected_since = 0.0

    # -- control ---------------------------------------------------------------------------

    async def request_resync(self) -> bool:
        """Ask whichever replica leads to resync; True when some replica heard it."""
        receivers = await self.redis.publish(keys.resync_channel(self.source_id), b"resync")
        return int(receivers) > 0

    async def _listen_for_resync_requests(self) -> None:
        """Follow the resync channel for good, resubscribing after Redis comes back."""
        retry = RetryPolicy(attempts=0, base=0.2, cap=5.0)
        failures = 0
        while True:
            try:
                async with self._pubsub_redis.pubsub() as pubsub:
                    await pubsub.subscribe(keys.resync_channel(self.source_id))
                    failures = 0
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._resync_on_request()
            except (RedisError, OSError) as exc:
                failures += 1
                delay = retry.delay_for(failures)
                log.warning("resync channel lost", error=str(exc), retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)

    async def _resync_on_request(self) -> None:
        client = self.client
        if client is None or not client.connected:
            return
        log.info("resync requested", source=self.source_id)
        with contextlib.suppress(Exception):  # failures are logged and counted by resync()
            await self.ingestor.resync(client)

    def status(self) -> ingest_pb2.IngestStatus:
        client = self.client
        if not self.elector.is_leader:
            state = _STATES.CONNECTION_STATE_STANDBY
        elif client is None or not client.connected:
            state = _STATES.CONNECTION_STATE_CONNECTING
        elif not self.ingestor.ready:
            state = _STATES.CONNECTION_STATE_RESYNCING
        else:
            state = _STATES.CONNECTION_STATE_LIVE
        malformed = client.parser_malformed if client else {}
        return ingest_pb2.IngestStatus(
            source_id=self.source_id,
            asterisk_host=self.settings.ami_host,
            asterisk_port=self.settings.ami_port,
            state=state,
            is_leader=self.elector.is_leader,
            fencing_token=self.elector.token,
            connected_since=self.connected_since,
            last_event_at=self.ingestor.last_event_at,
            events_total=self.ingestor.stats["events"],
            unknown_events_total=sum(self.ingestor.normalizer.unknown.values()),
            malformed_frames_total=sum(malformed.values()),
            resyncs_total=self.ingestor.stats["resyncs"],
            last_error=repr(client.last_error) if client and client.last_error else "",
        )
