"""The worker: a blocking pickup loop, batched completions, lease renewal and a reaper.

Pickup: when the claim script finds nothing, the worker blocks in ``BLPOP notify`` (woken by
an enqueue, a retry coming due, a resume), so an idle worker costs nothing and a new job starts
about one round trip after it was enqueued.  A claim takes up to every free slot at once.
Completions are flushed in batches by one task, so a no-op job costs ~1/batch of a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from typing import Any

from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.logging import get_logger
from runtime.queue import codec, lua_admin, lua_worker, registry, tracing
from runtime.queue.execution import ClaimedJob, JobContext, Requeue, claim_reply, complete_args, decide_failure
from runtime.queue.keys import ACTIVE_JOBS
from runtime.queue.metrics import JOBS_BY_STATE, JOBS_TOTAL, RUN_SECONDS, WAIT_SECONDS
from runtime.queue.scheduler import Clock, Scheduler
from runtime.queue.spec import QueueSpec
from runtime.supervision import TaskSupervisor

log = get_logger("runtime.queue.worker")
IDLE_BLOCK_S = 1.0
CLAIM_BATCH = 25
"""Most jobs one claim takes.  While a backlog waits the worker claims again as soon as a claim
returns, so the jobs of one claim run while the next claim is on the wire.  Small claims keep a
loop pass short: a job of higher priority enqueued meanwhile is taken by the next claim and starts
after about one small batch, not behind a whole ``concurrency`` of ready tasks (measured, one
process at c=50 saturated by no-op jobs: priority-10 start p50 ~2 ms vs ~7-9 ms claiming 50; a
second claim on the wire at once did not raise throughput and lengthened the passes).  25 rather
than 10: Redis pays a fixed cost per claim call (its clock, the delayed head, pause and rate-limit
checks, the batched ZADDs), and with two worker processes Redis CPU per job is what limits the
second process's gain; priority-10 start stayed p50 1.8 / p99 3.6 ms."""
COMPLETE_LINGER_S = 0.002
COMPLETE_BATCH = 64
"""Completions wait up to ``COMPLETE_LINGER_S`` for ``COMPLETE_BATCH`` of them before one
script records them: Redis pays a fixed cost per script call (its clock, the ``active`` ZREM,
the ``completed`` ZADD and its trim), so bigger batches cut Redis CPU per job —
measured at about half per completion going from batches of ~10 to ~50.  A slot is freed as
soon as its job returns, so the linger delays only the recorded outcome, never a pickup."""


class Worker:
    def __init__(
        self,
        spec: QueueSpec,
        redis: Redis,
        *,
        worker_id: str | None = None,
        shared: dict[str, Any] | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        clock: Clock = time.time,
        schedule_poll_s: float = 1.0,
    ) -> None:
        self.spec = spec
        self.redis = redis
        self.keys = spec.keys
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        if "\0" in self.worker_id:  # a lease is the worker id, attempt and start joined by NUL (keys.py)
            raise ValueError(f"worker id {self.worker_id!r} may not hold a NUL character")
        self.shared = shared or {}
        self._tracer = tracing.tracer(tracer_provider)
        self._claim = redis.register_script(lua_worker.CLAIM)
        self._complete = redis.register_script(lua_worker.COMPLETE)
        self._fail = redis.register_script(lua_worker.FAIL)
        self._renew = redis.register_script(lua_worker.RENEW)
        self._reap = redis.register_script(lua_worker.REAP)
        self._put_back = redis.register_script(lua_worker.PUT_BACK)
        self._requeue = redis.register_script(lua_worker.REQUEUE)
        self._clean = redis.register_script(lua_admin.CLEAN)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._leases: dict[str, int] = {}  # job id -> attempt, until its outcome reached Redis
        self._done: list[tuple[str, int, str]] = []
        self._done_ready = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = asyncio.Event()
        self._shutting_down = False
        self.tasks = TaskSupervisor()
        """The completer, the maintenance and the schedules of the current :meth:`run`: one that
        dies fails the process's liveness (:mod:`runtime.queue.runner`). The fetch loop ending
        ends the run itself."""
        self._closing = False  # the completer ends after its current flush
        self._blocking = False
        q = spec.name
        self._completed = JOBS_TOTAL.labels(q, "completed")
        self._failed = JOBS_TOTAL.labels(q, "failed")
        self._retried = JOBS_TOTAL.labels(q, "retried")
        self._requeued = JOBS_TOTAL.labels(q, "requeued")
        self._run_seconds = RUN_SECONDS.labels(q)
        self._wait_seconds = WAIT_SECONDS.labels(q)
        rl, krl = spec.rate_limit, spec.key_rate_limit
        self._limits: list[int | str] = [
            rl.max_jobs if rl else 0,
            rl.period_ms if rl else 0,
            krl.max_jobs if krl else 0,
            krl.period_ms if krl else 0,
        ]
        for prefix, limit in spec.key_prefix_rate_limits.items():
            self._limits.extend((prefix, limit.max_jobs, limit.period_ms))
        self._lease_ms = int(spec.lease_s * 1000)
        self.jobs_started = 0
        self.scheduler = Scheduler(spec, redis, clock=clock, poll_s=schedule_poll_s) if spec.schedules else None
        """Runs the queue's schedules (``clock``: epoch seconds, injectable for tests)."""

    def holds(self, job_id: str) -> bool:
        """Whether this worker still renews the job's lease (its outcome has not reached Redis)."""
        return job_id in self._leases

    # ---- lifecycle ------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Graceful stop (SIGTERM): take no new jobs, let active ones finish within the grace."""
        self._stopping.set()

    async def run(self) -> None:
        log.info("worker serving", worker=self.worker_id, queue=self.spec.name, concurrency=self.spec.concurrency)
        with contextlib.suppress(RedisError, OSError):
            await self._heartbeat_and_gauges()
        self.tasks = tasks = TaskSupervisor()
        completer = tasks.spawn(self._completer(), "queue-completer")
        maintenance = tasks.spawn(self._maintenance(), "queue-maintenance")
        fetcher = asyncio.create_task(self._fetch_loop(), name="queue-fetch")
        scheduling = tasks.spawn(self.scheduler.run(), "queue-schedules") if self.scheduler else None
        stop_wait = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([fetcher, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        tasks.close()
        self._shutting_down = True
        if scheduling is not None:
            scheduling.cancel()
            await asyncio.gather(scheduling, return_exceptions=True)
        if self._blocking or fetcher.done():  # never cut a claim short: its jobs would be stranded
            fetcher.cancel()
        stop_wait.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetcher
        await self._drain_active()
        maintenance.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await maintenance
        # Not cancelled: a flush cut short after Redis ran it would be sent again and reported lost.
        self._closing = True
        self._done_ready.set()
        await completer
        await self._flush_done()
        with contextlib.suppress(RedisError):
            await self.redis.zrem(self.keys.workers, self.worker_id)
        log.info("worker stopped", worker=self.worker_id, queue=self.spec.name)

    async def _drain_active(self) -> None:
        pending = set(self._tasks.values())
        if pending:
            log.info(
                "worker draining active jobs",
                worker=self.worker_id,
                grace_s=self.spec.shutdown_grace_s,
                active=len(pending),
            )
            _, still = await asyncio.wait(pending, timeout=self.spec.shutdown_grace_s)
            if still:
                ids = [job_id for job_id, task in self._tasks.items() if task in still]
                for task in still:
                    task.cancel()
                await asyncio.gather(*still, return_exceptions=True)
                await self._flush_done()
                put_back = await self._put_back(keys=[self.keys.prefix], args=[self.worker_id, *ids])
                for job_id in ids:
                    self._leases.pop(job_id, None)
                log.warning("worker put back unfinished jobs", worker=self.worker_id, jobs=put_back)

    # ---- pickup ---------------------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        concurrency = self.spec.concurrency
        batch = min(concurrency, CLAIM_BATCH)
        while not self._shutting_down:
            self._blocking = False
            free = concurrency - len(self._tasks)
            if free <= 0:
                self._slot_free.clear()
                self._blocking = True
                await self._slot_free.wait()
                continue
            try:
                want = min(free, batch)
                status, info, jobs = await self.claim(want)
                for job in jobs:
                    self._start(job)
                if len(jobs) == want or self._shutting_down:
                    continue
                self._blocking = True
                if status == 2:  # rate limited: sleep exactly until the window frees a start
                    await asyncio.sleep(info / 1000)
                else:
                    block = IDLE_BLOCK_S if info < 0 else min(max(info / 1000, 0.001), IDLE_BLOCK_S)
                    await self.redis.execute_command("BLPOP", self.keys.notify, round(block, 3))
            except (RedisError, OSError) as exc:
                log.warning("redis error in pickup", worker=self.worker_id, error=str(exc))
                self._blocking = True
                await asyncio.sleep(0.5)

    async def claim(self, want: int) -> tuple[int, int, list[ClaimedJob]]:
        """Lease up to ``want`` ready jobs to this worker (the claim script): status (0 ok, 1 paused,
        2 rate limited or held), info (ms until the next delayed job, or until a start frees) and
        the jobs, which the caller must run or give back."""
        reply = await self._claim(keys=[self.keys.prefix], args=[want, self._lease_ms, self.worker_id, *self._limits])
        return claim_reply(reply)

    def _start(self, job: ClaimedJob) -> None:
        self._leases[job.job_id] = job.attempt
        self.jobs_started += 1
        self._wait_seconds.observe(max(time.time() * 1000 - job.enqueued_at, 0) / 1000)
        self._tasks[job.job_id] = asyncio.create_task(self._execute(job))

    # ---- running a job ------------------------------------------------------------------------
    async def _execute(self, job: ClaimedJob) -> None:
        spec = self.spec
        function = spec.function_map.get(job.name)
        timeout = float(job.options.get("to") or (function.timeout_s if function else None) or spec.job_timeout_s)
        started = time.perf_counter()
        try:
            with (
                tracing.job_context(job.options.get("c")),
                self._tracer.start_as_current_span(
                    f"queue.run {job.name}",
                    kind=trace.SpanKind.CONSUMER,
                    attributes={"queue.name": spec.name, "queue.job_id": job.job_id, "queue.attempt": job.attempt},
                ) as span,
            ):
                try:
                    if function is None:
                        raise LookupError(f"no job function {job.name!r} in this worker")
                    ctx = JobContext(self.keys, self.redis, job, self.shared)
                    # asyncio.timeout, not wait_for: no second task per job, and a job that
                    # does not suspend finishes in the same loop step that started it.
                    async with asyncio.timeout(timeout):
                        result = await function.coroutine(ctx, **job.data)
                except asyncio.CancelledError:
                    raise
                except Requeue as exc:
                    span.add_event("requeued", {"reason": str(exc), "hold_s": exc.hold_s})
                    await self._record_requeue(job, exc)
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)[:200]))
                    await self._record_failure(job, exc, timeout, unknown=function is None)
                else:
                    self._done.append((job.job_id, job.attempt, codec.encode_result(result)))
                    self._done_ready.set()
                    self._completed.inc()
        except asyncio.CancelledError:
            if not self._shutting_down:
                raise
        except Exception:
            # Redis did not take the outcome (a restart outlasting the retries). Renewing the
            # lease would keep the job "active" forever; dropped, the lease lapses and any
            # worker's reaper runs the job again (at-least-once, as for a killed worker).
            self._leases.pop(job.job_id, None)
            log.exception(
                "job outcome not recorded: its lease will lapse and it re-runs",
                worker=self.worker_id,
                job_id=job.job_id,
            )
        finally:
            self._run_seconds.observe(time.perf_counter() - started)
            self._tasks.pop(job.job_id, None)
            self._slot_free.set()

    async def _record_failure(self, job: ClaimedJob, exc: Exception, timeout_s: float, *, unknown: bool) -> None:
        if unknown:
            job.max_attempts = job.attempt  # retrying cannot make an unknown function appear
        decision = decide_failure(job, exc, job.backoff(self.spec.backoff), timeout_s)
        (self._retried if decision.retry_delay_ms >= 0 else self._failed).inc()
        log.warning(
            "job attempt failed", queue=self.spec.name, job_id=job.job_id, attempt=job.attempt, error=decision.error
        )
        keep = self.spec.retention.failed
        for delay in (0.1, 0.5, 1.0, 2.0, None):
            try:
                await self._fail(
                    keys=[self.keys.prefix],
                    args=[self.worker_id, job.job_id, job.attempt, decision.entry, decision.retry_delay_ms, keep],
                )
                break
            except (RedisError, OSError):
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        self._leases.pop(job.job_id, None)

    async def _record_requeue(self, job: ClaimedJob, request: Requeue) -> None:
        self._requeued.inc()
        log.info(
            "job requeued",
            queue=self.spec.name,
            job_id=job.job_id,
            hold_s=round(request.hold_s, 3),
            reason=str(request),
        )
        args: list[str | int] = [self.worker_id, job.job_id, job.attempt, round(request.hold_s * 1000)]
        await self._requeue(keys=[self.keys.prefix], args=args)
        self._leases.pop(job.job_id, None)

    # ---- completions, leases, reaper -----------------------------------------------------------
    async def _completer(self) -> None:
        while not self._closing:
            await self._done_ready.wait()
            if len(self._done) < COMPLETE_BATCH and not self._closing:
                await asyncio.sleep(COMPLETE_LINGER_S)
            try:
                await self._flush_done()
            except (RedisError, OSError) as exc:
                log.warning("completions not recorded yet", worker=self.worker_id, error=str(exc))
                if not self._closing:
                    await asyncio.sleep(0.5)

    async def _flush_done(self) -> None:
        self._done_ready.clear()
        batch, self._done = self._done, []
        if not batch:
            return
        args = complete_args(self.worker_id, self.spec.retention.completed, batch)
        try:
            lost = await self._complete(keys=[self.keys.prefix], args=args)
        except BaseException:
            self._done[:0] = batch  # keep them for the next try
            self._done_ready.set()
            raise
        for job_id, _, _ in batch:
            self._leases.pop(job_id, None)
        if lost:
            log.warning("lease lost before completion", worker=self.worker_id, jobs=lost)

    async def _maintenance(self) -> None:
        lease_s = self.spec.lease_s
        tick = min(max(lease_s / 5, 0.05), 1.0)
        last_renew = last_gauge = last_clean = 0.0
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            try:
                if self._leases and now - last_renew >= lease_s / 3:
                    await self._renew(keys=[self.keys.prefix], args=[self.worker_id, self._lease_ms, *self._leases])
                    last_renew = now
                stalled = await self._reap(keys=[self.keys.prefix], args=[self.spec.retention.failed])
                if stalled:
                    log.warning("stalled jobs re-queued", queue=self.spec.name, jobs=[s.decode() for s in stalled])
                if now - last_gauge >= 1.0:
                    await self._heartbeat_and_gauges()
                    last_gauge = now
                if now - last_clean >= 10.0:
                    await self._apply_max_age()
                    last_clean = now
            except (RedisError, OSError) as exc:
                log.warning("redis error in maintenance", worker=self.worker_id, error=str(exc))

    async def _heartbeat_and_gauges(self) -> None:
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(k.workers, {self.worker_id: int(time.time() * 1000)})
            pipe.hset(registry.REGISTRY_KEY, mapping=dict(registry.declaration_field(self.spec)))
            pipe.zcard(k.wait)
            pipe.zcount(k.active, *ACTIVE_JOBS)
            for key in (k.delayed, k.completed, k.failed):
                pipe.zcard(key)
            pipe.llen(k.wait0)
            _, _, *counts, waiting0 = await pipe.execute()
        counts[0] += waiting0
        for state, n in zip(("waiting", "active", "delayed", "completed", "failed"), counts, strict=True):
            JOBS_BY_STATE.labels(self.spec.name, state).set(n)

    async def _apply_max_age(self) -> None:
        grace_ms = int(self.spec.retention.max_age_s * 1000)
        for state in ("completed", "failed"):
            await self._clean(keys=[self.keys.prefix], args=[state, grace_ms, 1000])
