"""The AMI client's reconnect loop is supervised: ending by itself is a death, its close is not.

It retries every error, but a ``CancelledError`` nobody asked for (the ingest's resync in the
``on_connect`` hook makes gRPC calls, and grpc.aio raises one once their channel is closed) ends
it; without supervision a leader would keep its lease with no AMI session and nothing would say so.
"""

from __future__ import annotations

import asyncio

import structlog

from devsupport.waiting import wait_until
from runtime.supervision import TaskSupervisor
from services.ami_ingest.ami.client import AmiClient

from ._client_support import ScriptedAmi, client_config


async def test_a_reconnect_loop_ended_by_a_cancel_nobody_asked_for_is_a_death() -> None:
    tasks = TaskSupervisor()

    async def resync_on_a_closed_channel(client: AmiClient) -> None:
        raise asyncio.CancelledError  # as grpc.aio's read() on a call whose channel was closed

    async with ScriptedAmi() as server:
        client = AmiClient(client_config(server.port), on_connect=resync_on_a_closed_channel, tasks=tasks)
        with structlog.testing.capture_logs() as logs:
            client.start()
            try:
                await wait_until(lambda: tasks.failures, within=20, what="the reconnect loop's death")
            finally:
                await client.close()
    assert tasks.failures == {"ami-client": "cancelled without being asked"}
    assert [(line["log_level"], line["task"]) for line in logs if line["event"] == "background task died"] == [
        ("error", "ami-client")
    ]


async def test_closing_the_client_is_no_death() -> None:
    tasks = TaskSupervisor()
    async with ScriptedAmi() as server:
        client = AmiClient(client_config(server.port), tasks=tasks)
        client.start()
        try:
            async with asyncio.timeout(10):
                await client.wait_connected()
        finally:
            await client.close()
        await asyncio.sleep(0)  # the task's done callbacks have run
    assert tasks.failures == {}
    assert tasks.running == []
