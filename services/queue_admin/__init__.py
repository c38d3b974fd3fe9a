"""The queue admin service: ``switchboard.queue.v1.QueueAdmin`` for every queue, from one process.

Decision: one admin service reads and controls all queues
----------------------------------------------------------
A queue's whole state lives in Redis (:mod:`runtime.queue.keys`: job hashes, state sets, the
paused flag, the workers' heartbeats, the events channel), and every worker writes its queue's
declaration — job names with their parameters, concurrency, attempts, rate limits, payload
limit — into the registry HASH ``sbq:v3:registry`` (:mod:`runtime.queue.registry`) with each
heartbeat.  So nothing about a queue needs the process that runs it: ``python -m
services.queue_admin`` serves the admin API on ``QUEUE_ADMIN_ADDR`` (default 127.0.0.1:50055)
for every declared queue, and a new service's queue appears there as soon as its first worker
is up — no admin endpoint per service, no service code imported here.  A queue no worker has
declared is NOT_FOUND.

Enqueues made here go through the ordinary :class:`runtime.queue.QueueClient` built from the
declaration (same validation, same dedup by job id, same disk spool while Redis is down).
``WatchEvents`` is fed by one ``PSUBSCRIBE`` on every queue's events channel
(:mod:`services.queue_admin.events`) and ends when the server drains.

Modules: ``settings`` (env), ``directory`` (registry -> per-queue admin and client),
``events`` (pub/sub fan-out), ``convert`` (layer models <-> protobuf), ``servicer`` (thin gRPC),
``app`` (wiring), ``__main__`` (entry point).
"""
