"""The gRPC face of the queue admin: validate the request, delegate to the queue layer, convert.

Errors are :mod:`runtime.errors` exceptions that the runtime interceptor turns into statuses:
a queue nobody declared is NOT_FOUND; bad input is INVALID_ARGUMENT naming the request's field
(``name``, ``data_json``, ``priority``, ``delay_ms``, ``job_id``, ``attempts``, ``state``,
``older_than_ms``, ``limit``, ``page``, ``page_size``, ``queues``) with nothing enqueued or
changed; an existing job id is ALREADY_EXISTS; retrying a job that is not finished, promoting
one that is not delayed or removing an active one is FAILED_PRECONDITION; Redis unreachable is
UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError
from switchboard.common.v1 import common_pb2
from switchboard.queue.v1 import queue_pb2, queue_pb2_grpc

from runtime.auth import Scope, method_scopes
from runtime.auth.grpc_server import caller
from runtime.errors import InvalidArgument, PayloadTooLarge, Unavailable
from runtime.grpc_server import shutdown_event
from runtime.grpc_types import ServicerContext as Context
from runtime.queue import QUEUE_NAME_PATTERN, JobInfo, JobRequest, JobState
from runtime.queue.keys import fixed_fields
from runtime.redis_durability import check_redis_durability
from services.queue_admin.convert import event_pb, job_pb, layer_state, proto_invalid_argument, queue_info_pb
from services.queue_admin.directory import QueueDirectory, QueueHandle
from services.queue_admin.events import EventHub

__all__ = ["DEFAULT_PAGE_SIZE", "SCOPES", "SERVICE_NAME", "QueueAdminServicer"]

SERVICE_NAME = queue_pb2.DESCRIPTOR.services_by_name["QueueAdmin"].full_name
SCOPES = method_scopes(
    queue_pb2.DESCRIPTOR.services_by_name["QueueAdmin"],
    {
        **dict.fromkeys(("ListQueues", "GetQueue", "ListJobs", "GetJob", "GetHealth", "WatchEvents"), Scope.READ),
        **dict.fromkeys(
            ("EnqueueJob", "RetryJob", "PromoteJob", "RetryFailed", "PauseQueue", "ResumeQueue"), Scope.OPERATE
        ),
        "RemoveJob": Scope.ADMIN,
        "CleanQueue": Scope.ADMIN,
        "DrainQueue": Scope.INTERNAL,
    },
)
"""The scope of every QueueAdmin method."""
DEFAULT_PAGE_SIZE = 50
CLEAN_BATCH = 1000

R = TypeVar("R")


def _redis_unavailable(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Redis connection trouble surfaces as UNAVAILABLE, not as an internal error."""

    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> R:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

    return wrapper


def _sees_tracebacks() -> bool:
    """Tracebacks name server code and file paths: only admins (and the internal identity, which
    acts for whoever called the gateway and leaves them out itself) read them; others get the
    error's type and message."""
    principal = caller()
    return principal is None or principal.allows(Scope.ADMIN)


class QueueAdminServicer(queue_pb2_grpc.QueueAdminServicer):
    def __init__(self, directory: QueueDirectory, hub: EventHub, redis: Redis) -> None:
        self.directory = directory
        self.hub = hub
        self.redis = redis

    # ---- queues ---------------------------------------------------------------------------
    @_redis_unavailable
    async def ListQueues(self, request: queue_pb2.ListQueuesRequest, context: Context) -> queue_pb2.ListQueuesResponse:
        handles = await self.directory.all()
        return queue_pb2.ListQueuesResponse(queues=await asyncio.gather(*(self._info(h) for h in handles)))

    @_redis_unavailable
    async def GetQueue(self, request: queue_pb2.GetQueueRequest, context: Context) -> queue_pb2.QueueInfo:
        return await self._info(await self._queue(request.queue))

    @_redis_unavailable
    async def PauseQueue(self, request: queue_pb2.QueueRef, context: Context) -> queue_pb2.QueueInfo:
        handle = await self._queue(request.queue)
        await handle.admin.pause()
        return await self._info(handle)

    @_redis_unavailable
    async def ResumeQueue(self, request: queue_pb2.QueueRef, context: Context) -> queue_pb2.QueueInfo:
        handle = await self._queue(request.queue)
        await handle.admin.resume()
        return await self._info(handle)

    @_redis_unavailable
    async def DrainQueue(self, request: queue_pb2.QueueRef, context: Context) -> queue_pb2.DrainQueueResponse:
        handle = await self._queue(request.queue)
        return queue_pb2.DrainQueueResponse(removed=await handle.admin.drain(include_delayed=True))

    @_redis_unavailable
    async def CleanQueue(self, request: queue_pb2.CleanQueueRequest, context: Context) -> queue_pb2.CleanQueueResponse:
        handle = await self._queue(request.queue)
        state = layer_state(request.state)
        if state is JobState.ACTIVE:
            raise InvalidArgument("state", "active jobs cannot be cleaned")
        if request.older_than_ms < 0:
            raise InvalidArgument("older_than_ms", "must be >= 0")
        if request.limit < 0:
            raise InvalidArgument("limit", "must be >= 0 (0: no limit)")
        if request.state == queue_pb2.JOB_STATE_PAUSED and not await handle.admin.is_paused():
            return queue_pb2.CleanQueueResponse(removed=0)
        grace_s = request.older_than_ms / 1000
        removed = 0
        while True:
            batch = CLEAN_BATCH if request.limit == 0 else min(CLEAN_BATCH, request.limit - removed)
            got = len(await handle.admin.clean(state.value, grace_s=grace_s, limit=batch))
            removed += got
            if got < batch or (request.limit and removed >= request.limit):
                return queue_pb2.CleanQueueResponse(removed=removed)

    @_redis_unavailable
    async def RetryFailed(self, request: queue_pb2.QueueRef, context: Context) -> queue_pb2.RetryFailedResponse:
        handle = await self._queue(request.queue)
        return queue_pb2.RetryFailedResponse(retried=await handle.admin.retry_all_failed())

    # ---- jobs -----------------------------------------------------------------------------
    @_redis_unavailable
    async def ListJobs(self, request: queue_pb2.ListJobsRequest, context: Context) -> queue_pb2.ListJobsResponse:
        handle = await self._queue(request.queue)
        state = layer_state(request.state)
        page = request.page.page or 1
        size = request.page.page_size or DEFAULT_PAGE_SIZE
        paused = await handle.admin.is_paused()
        if request.state == queue_pb2.JOB_STATE_PAUSED and not paused:  # no job is paused in a running queue
            return queue_pb2.ListJobsResponse(page=common_pb2.PageInfo(page=page, page_size=size, total=0))
        jobs, total = await handle.admin.jobs(state.value, page=page, page_size=size)
        run_at = await self._run_at(handle, jobs)
        return queue_pb2.ListJobsResponse(
            jobs=[
                job_pb(j, paused=paused, run_at_ms=run_at.get(j.job_id, 0), tracebacks=_sees_tracebacks()) for j in jobs
            ],
            page=common_pb2.PageInfo(page=page, page_size=size, total=total),
        )

    @_redis_unavailable
    async def GetJob(self, request: queue_pb2.JobRef, context: Context) -> queue_pb2.Job:
        handle = await self._queue(request.queue)
        return await self._job(handle, request.job_id)

    @_redis_unavailable
    async def EnqueueJob(self, request: queue_pb2.EnqueueJobRequest, context: Context) -> queue_pb2.EnqueueJobResponse:
        handle = await self._queue(request.queue)
        if not request.name:
            raise InvalidArgument("name", "is required (one of: " + ", ".join(handle.declaration.job_names) + ")")
        data = _data(request.data_json, handle.declaration.max_payload_bytes)
        if request.delay_ms < 0:
            raise InvalidArgument("delay_ms", "must be >= 0")
        if request.attempts < 0:
            raise InvalidArgument("attempts", "must be >= 1 (0: the queue's default)")
        job = JobRequest(
            request.name,
            data,
            job_id=request.job_id or None,
            priority=request.priority,
            delay_s=request.delay_ms / 1000 if request.delay_ms else None,
            attempts=request.attempts or None,
        )
        try:
            enqueued = await handle.client.submit(job)
        except InvalidArgument as exc:
            raise proto_invalid_argument(exc) from None
        return queue_pb2.EnqueueJobResponse(job_id=enqueued.job_id, spooled=enqueued.spooled)

    @_redis_unavailable
    async def RetryJob(self, request: queue_pb2.JobRef, context: Context) -> queue_pb2.JobActionResponse:
        handle = await self._queue(request.queue)
        job_id = request.job_id
        await handle.admin.retry(job_id)
        return queue_pb2.JobActionResponse(job=await self._job(handle, job_id))

    @_redis_unavailable
    async def PromoteJob(self, request: queue_pb2.JobRef, context: Context) -> queue_pb2.JobActionResponse:
        handle = await self._queue(request.queue)
        job_id = request.job_id
        await handle.admin.promote(job_id)
        return queue_pb2.JobActionResponse(job=await self._job(handle, job_id))

    @_redis_unavailable
    async def RemoveJob(self, request: queue_pb2.JobRef, context: Context) -> queue_pb2.RemoveJobResponse:
        handle = await self._queue(request.queue)
        await handle.admin.remove(request.job_id)
        return queue_pb2.RemoveJobResponse(removed=True)

    # ---- health and events ------------------------------------------------------------------
    async def GetHealth(self, request: queue_pb2.GetHealthRequest, context: Context) -> queue_pb2.GetHealthResponse:
        try:
            await self.redis.ping()
        except (RedisError, OSError):
            return queue_pb2.GetHealthResponse(
                redis_available=False,
                queues=[
                    queue_pb2.QueueHealth(
                        queue=h.name,
                        healthy=False,
                        degraded=h.client.health() == "degraded",
                        detail=f"redis unreachable; {h.client.spooled()} enqueues spooled to disk",
                    )
                    for h in self.directory.known()
                ],
            )
        handles = await self.directory.all()
        return queue_pb2.GetHealthResponse(
            redis_available=True, queues=await asyncio.gather(*(self._health(h) for h in handles))
        )

    async def WatchEvents(
        self, request: queue_pb2.WatchEventsRequest, context: Context
    ) -> AsyncIterator[queue_pb2.JobEvent]:
        for name in request.queues:
            if not QUEUE_NAME_PATTERN.fullmatch(name):
                raise InvalidArgument("queues", f"{name!r} must match {QUEUE_NAME_PATTERN.pattern}")
        for name in dict.fromkeys(request.queues):
            await self.directory.get(name)  # NOT_FOUND at once, not silence until the deadline
        stop = shutdown_event()
        try:
            sub = await self.hub.subscribe(request.queues)
        except TimeoutError:
            raise Unavailable("queue events unavailable: redis subscription not live") from None
        try:
            # Initial metadata tells the caller the subscription is live: nothing after it is missed.
            await context.send_initial_metadata((("x-watch", "live"),))
            # So does the first message, for clients that only read messages.
            yield queue_pb2.JobEvent(event="subscribed", subscribed=True, at_ms=int(time.time() * 1000))
            while (item := await sub.next(stop)) is not None:
                event, at_ms = item
                yield event_pb(event, at_ms=at_ms)
            if sub.overflowed and not stop.is_set():
                raise Unavailable("watcher fell too far behind; reconnect and re-read the queues")
        finally:
            self.hub.unsubscribe(sub)

    # ---- helpers -------------------------------------------------------------------------------
    async def _queue(self, name: str) -> QueueHandle:
        if not name:
            raise InvalidArgument("queue", "is required")
        if not QUEUE_NAME_PATTERN.fullmatch(name):
            raise InvalidArgument("queue", f"must match {QUEUE_NAME_PATTERN.pattern}")
        return await self.directory.get(name)

    async def _info(self, handle: QueueHandle) -> queue_pb2.QueueInfo:
        counts, paused, workers = await asyncio.gather(
            handle.admin.counts(), handle.admin.is_paused(), handle.admin.workers()
        )
        return queue_info_pb(
            handle.declaration,
            counts,
            paused=paused,
            workers=len(workers),
            degraded=handle.client.health() == "degraded",
        )

    async def _job(self, handle: QueueHandle, job_id: str) -> queue_pb2.Job:
        job = await handle.admin.job(job_id)
        paused = await handle.admin.is_paused()
        run_at = await self._run_at(handle, [job])
        return job_pb(job, paused=paused, run_at_ms=run_at.get(job_id, 0), tracebacks=_sees_tracebacks())

    async def _run_at(self, handle: QueueHandle, jobs: list[JobInfo]) -> dict[str, int]:
        delayed = [j.job_id for j in jobs if j.state is JobState.DELAYED]
        if not delayed:
            return {}
        scores = await self.redis.zmscore(handle.admin.keys.delayed, delayed)
        return {job_id: int(s) for job_id, s in zip(delayed, scores, strict=True) if s is not None}

    async def _health(self, handle: QueueHandle) -> queue_pb2.QueueHealth:
        workers = len(await handle.admin.workers())
        oldest = await _oldest_waiting_ms(self.redis, handle)
        degraded = handle.client.health() == "degraded"
        problems = []
        if workers == 0:
            problems.append("no live worker")
        if await handle.admin.is_paused():
            problems.append("paused")
        if degraded:
            problems.append(f"{handle.client.spooled()} enqueues spooled to disk")
        with contextlib.suppress(RedisError, OSError):
            problems.extend(await check_redis_durability(self.redis))
        return queue_pb2.QueueHealth(
            queue=handle.name,
            healthy=workers > 0 and not degraded,
            degraded=degraded,
            workers=workers,
            oldest_waiting_ms=oldest,
            detail="; ".join(problems) or "ok",
        )


async def _oldest_waiting_ms(redis: Redis, handle: QueueHandle) -> int:
    """Age of the longest-waiting job: the head of each priority band (FIFO within a band)."""
    band = 2**44
    key = handle.admin.keys.wait
    async with redis.pipeline(transaction=False) as pipe:
        for priority in range(11):
            low = (10 - priority) * band
            pipe.zrangebyscore(key, low, low + band - 1, start=0, num=1)
        heads = [ids[0].decode() for ids in await pipe.execute() if ids]
    if not heads:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in heads:
            pipe.hget(handle.admin.keys.job(job_id), "x")
        times = [fixed_fields(x).enqueued_at for x in await pipe.execute() if x is not None]
    return max(int(time.time() * 1000) - min(times), 0) if times else 0


def _data(data_json: str, limit: int) -> dict[str, Any]:
    if not data_json.strip():
        return {}
    size = len(data_json.encode())
    if size > limit:
        raise PayloadTooLarge(
            f"data_json: payload is {size} bytes, over the {limit}-byte limit",
            details={"field": "data_json", "size": size, "limit": limit},
        )
    try:
        data = json.loads(data_json)
    except ValueError as exc:
        raise InvalidArgument("data_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("data_json", "must be a JSON object")
    return data
