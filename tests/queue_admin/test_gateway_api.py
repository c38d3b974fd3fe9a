"""The gateway's /api/queues… through httpx ASGITransport against the real queue admin servicer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from switchboard.queue.v1 import queue_pb2 as Q

from devsupport.auth import AUTH_HEADERS
from devsupport.waiting import wait_until
from gateway.app import create_app
from gateway.settings import GatewaySettings
from runtime.queue import QueueAdmin, QueueSpec
from tests.auth.harness import make_keys
from tests.gateway.conventions import check_against_openapi, check_sse_event, convention_breaks
from tests.gateway.harness import live_stream
from tests.gateway.sse import events
from tests.queue_admin.harness import AdminServer, StartWorker

HEAVY = "heavy_workflow_execution"
JOBS = "/api/queues/workflow/jobs"
JOB_KEYS = {
    "jobId", "name", "queue", "state", "priority", "data", "attempts", "maxAttempts", "errors", "progress", "result",
    "enqueuedAt", "startedAt", "finishedAt", "runAt",
}  # fmt: skip


@pytest.fixture
async def api(admin_server: AdminServer, declared: QueueSpec) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewaySettings(queue_admin_addr=admin_server.address, rpc_timeout_seconds=5.0))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test", headers=AUTH_HEADERS
        ) as client,
    ):
        yield client


async def enqueue(api: httpx.AsyncClient, **body: Any) -> str:
    response = await api.post(JOBS, json={"name": HEAVY, **body})
    assert response.status_code == 200, response.text
    job_id: str = response.json()["data"]["jobId"]
    return job_id


async def test_enqueue_answers_the_job_id_and_409_when_it_exists(api: httpx.AsyncClient) -> None:
    body = {"name": HEAVY, "data": {"duration_ms": 5}, "priority": 3, "delayMs": 0, "jobId": "rerun-7", "attempts": 2}
    first = await api.post(JOBS, json=body)
    assert first.status_code == 200
    assert first.json() == {"success": True, "data": {"jobId": "rerun-7", "spooled": False}}
    again = await api.post(JOBS, json=body)
    assert again.status_code == 409
    error = again.json()
    assert error["success"] is False
    assert error["error"]["code"] == "ALREADY_EXISTS"
    assert "rerun-7" in error["error"]["message"]


async def test_job_data_over_its_limit_is_413_naming_the_field(api: httpx.AsyncClient, layer: QueueAdmin) -> None:
    response = await api.post(JOBS, json={"name": HEAVY, "data": {"duration_ms": "x" * (512 * 1024)}})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["details"]["field"] == "data_json"
    assert (await layer.counts()).waiting == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "no_such_job"}, "name"),
        ({"data": {"unexpected": 1}}, "data.unexpected"),
        ({"data": {"duration_ms": "abc"}}, "data.duration_ms"),
        ({"data": [1, 2]}, "data"),
        ({"priority": 11}, "priority"),
        ({"delayMs": -1}, "delayMs"),
        ({"attempts": 0}, "attempts"),
        ({"attempts": 100_000}, "attempts"),
        ({"jobId": "not ok!"}, "jobId"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_bad_enqueue_is_400_naming_the_field_and_enqueues_nothing(
    api: httpx.AsyncClient, layer: QueueAdmin, body: dict[str, Any], field: str
) -> None:
    response = await api.post(JOBS, json={"name": HEAVY, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"{field}: ")
    counts = await layer.counts()
    assert counts.waiting + counts.delayed == 0


async def test_unknown_queue_and_job_are_404(api: httpx.AsyncClient) -> None:
    missing_queue = await api.post("/api/queues/nope/jobs", json={"name": HEAVY})
    assert missing_queue.status_code == 404
    assert missing_queue.json()["error"]["code"] == "NOT_FOUND"
    assert (await api.get("/api/queues/nope")).status_code == 404
    assert (await api.get(f"{JOBS}/missing")).status_code == 404
    assert (await api.post(f"{JOBS}/missing/retry")).status_code == 404


async def test_queues_list_one_queue_and_stats_use_the_documented_names(api: httpx.AsyncClient) -> None:
    await enqueue(api)
    await enqueue(api, delayMs=60_000)
    listed = (await api.get("/api/queues")).json()
    assert listed["success"] is True
    assert listed["meta"]["count"] == 1
    (queue,) = listed["data"]
    assert queue["name"] == "workflow"
    assert queue["isPaused"] is False
    assert queue["counts"] == {"waiting": 1, "active": 0, "delayed": 1, "completed": 0, "failed": 0, "paused": 0}
    assert queue["rateLimit"] is None
    assert queue["concurrency"] == 50
    one = (await api.get("/api/queues/workflow")).json()["data"]
    assert one == {**queue, "jobSchemas": one["jobSchemas"]}
    assert sorted(one["jobSchemas"]) == sorted(queue["jobNames"])
    assert one["jobSchemas"][HEAVY]["properties"]["duration_ms"] == {"type": "integer", "default": 0}
    stats = (await api.get("/api/queue/stats")).json()["data"]
    assert stats["queues"]["workflow"]["delayed"] == 1
    assert stats["totals"]["waiting"] == 1


async def test_job_listing_pages_and_job_detail_names(api: httpx.AsyncClient) -> None:
    ids = [await enqueue(api, data={"duration_ms": n}) for n in range(3)]
    page = (await api.get(JOBS, params={"state": "waiting", "page": 2, "pageSize": 2})).json()
    assert page["meta"]["count"] == 1
    assert page["meta"]["page"] == {"page": 2, "pageSize": 2, "total": 3}
    assert [j["jobId"] for j in page["data"]] == ids[2:]
    assert set(page["data"][0]) == JOB_KEYS - {"data", "result"}  # a listing is metadata; the job has the rest
    job = (await api.get(f"{JOBS}/{ids[1]}")).json()["data"]
    assert set(job) == JOB_KEYS
    assert job["state"] == "waiting"
    assert job["data"] == {"duration_ms": 1}
    assert (job["attempts"], job["maxAttempts"], job["errors"]) == (0, 3, [])
    assert job["progress"] is None
    assert job["result"] is None
    assert job["enqueuedAt"] > 1_600_000_000_000
    assert job["startedAt"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "sleeping"}, "state"),
        ({"page": 0}, "page"),
        ({"pageSize": 5000}, "pageSize"),
        ({"page_size": 5}, "page_size"),
    ],
)
async def test_bad_listing_is_400_naming_the_parameter(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await api.get(JOBS, params=params)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == field


async def test_promote_remove_pause_resume_and_clean(api: httpx.AsyncClient, layer: QueueAdmin) -> None:
    delayed = await enqueue(api, delayMs=60_000)
    promoted = (await api.post(f"{JOBS}/{delayed}/promote")).json()["data"]
    assert promoted["state"] == "waiting"
    again = await api.post(f"{JOBS}/{delayed}/promote")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "FAILED_PRECONDITION"
    removed = await api.post(f"{JOBS}/{delayed}/remove")
    assert removed.json() == {"success": True, "data": {"jobId": delayed, "removed": True}}

    paused = (await api.post("/api/queues/workflow/pause")).json()["data"]
    assert paused["isPaused"] is True
    assert await layer.is_paused()
    assert (await api.post("/api/queues/workflow/resume")).json()["data"]["isPaused"] is False

    for _ in range(3):
        await enqueue(api, delayMs=60_000)
    cleaned = await api.post("/api/queues/workflow/clean", json={"state": "delayed", "graceMs": 0, "limit": 2})
    assert cleaned.json()["data"] == {"removed": 2}
    bad = await api.post("/api/queues/workflow/clean", json={"state": "delayed", "olderThanMs": -5})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["field"] == "olderThanMs"
    assert (await api.post("/api/queues/workflow/clean", json={"state": "active"})).status_code == 400


async def test_a_waiting_job_of_a_paused_queue_is_paused_until_the_queue_resumes(api: httpx.AsyncClient) -> None:
    job_id = await enqueue(api)
    assert (await api.get(JOBS, params={"state": "paused"})).json()["meta"]["page"]["total"] == 0
    await api.post("/api/queues/workflow/pause")
    assert (await api.get(f"{JOBS}/{job_id}")).json()["data"]["state"] == "paused"
    paused = (await api.get(JOBS, params={"state": "paused"})).json()
    assert [(j["jobId"], j["state"]) for j in paused["data"]] == [(job_id, "paused")]
    assert paused["meta"]["page"]["total"] == 1
    waiting = (await api.get(JOBS, params={"state": "waiting"})).json()["data"]
    assert [(j["jobId"], j["state"]) for j in waiting] == [(job_id, "paused")]  # BullMQ: waiting includes paused
    assert (await api.get("/api/queues/workflow")).json()["data"]["counts"]["paused"] == 1
    await api.post("/api/queues/workflow/resume")
    assert (await api.get(f"{JOBS}/{job_id}")).json()["data"]["state"] == "waiting"
    assert (await api.get(JOBS, params={"state": "paused"})).json()["data"] == []


async def test_cleaning_paused_jobs_removes_the_waiting_jobs_of_a_paused_queue_only(
    api: httpx.AsyncClient, layer: QueueAdmin
) -> None:
    await enqueue(api)
    clean = {"state": "paused", "olderThanMs": 0}
    assert (await api.post("/api/queues/workflow/clean", json=clean)).json()["data"] == {"removed": 0}
    assert (await layer.counts()).waiting == 1
    await api.post("/api/queues/workflow/pause")
    assert (await api.post("/api/queues/workflow/clean", json=clean)).json()["data"] == {"removed": 1}
    assert (await layer.counts()).waiting == 0


async def test_a_failed_job_shows_its_errors_and_retry_failed_reruns_it(
    api: httpx.AsyncClient, start_worker: StartWorker, layer: QueueAdmin
) -> None:
    await start_worker(attempts=1)
    job_id = await enqueue(api, data={"fail_times": 1})

    async def failed() -> bool:
        return (await layer.counts()).failed == 1

    await wait_until(failed, within=10, what="job failed")
    job = (await api.get(f"{JOBS}/{job_id}")).json()["data"]
    assert job["state"] == "failed"
    (error,) = job["errors"]
    assert set(error) == {"attempt", "type", "message", "traceback", "failedAt"}
    assert (error["attempt"], error["type"]) == (1, "TransientError")
    assert "Traceback" in error["traceback"]
    listed = (await api.get(JOBS, params={"state": "failed"})).json()
    assert [j["jobId"] for j in listed["data"]] == [job_id]
    assert (await api.post("/api/queues/workflow/retry-failed")).json()["data"] == {"retried": 1}

    async def completed() -> bool:
        return (await layer.counts()).completed == 1

    await wait_until(completed, within=10, what="retried job completed")
    done = (await api.get(f"{JOBS}/{job_id}")).json()["data"]
    assert done["result"] == {"kind": HEAVY, "attempt": 2, "workedMs": 0}
    assert done["finishedAt"] >= done["startedAt"] > 0


async def test_events_stream_says_ready_then_relays_job_events(
    admin_server: AdminServer, declared: QueueSpec, api: httpx.AsyncClient
) -> None:
    app = create_app(GatewaySettings(queue_admin_addr=admin_server.address, sse_ping_seconds=1.0))
    async with live_stream(app, "/api/queues/events", {"queue": "workflow"}) as (client, response):
        assert response.status_code == 200
        stream = events(response)
        async with asyncio.timeout(10):
            ready = await anext(stream)
            assert ready.event == "ready"
            job_id = await enqueue(api)
            job_event = await anext(stream)
        assert job_event.event == "job"
        assert {k: job_event.json()[k] for k in ("queue", "jobId", "event")} == {
            "queue": "workflow",
            "jobId": job_id,
            "event": "waiting",
        }
        spec = (await client.get("/openapi.json")).json()
        check_sse_event(spec, "/api/queues/events", "ready", ready.json())
        check_sse_event(spec, "/api/queues/events", "job", job_event.json())


async def test_events_stream_with_a_bad_filter_is_400(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/queues/events", params={"queue": "bad name"})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "queue"


async def test_events_stream_of_an_undeclared_queue_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/queues/events", params={"queue": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["details"]["queue"] == "nope"


async def test_malformed_json_is_400_naming_the_body(api: httpx.AsyncClient, layer: QueueAdmin) -> None:
    response = await api.post(JOBS, content=b'{"name": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"]["field"] == "body"
    assert error["message"].startswith("body: is not valid JSON: ")
    assert (await layer.counts()).waiting == 0


async def test_queue_answers_follow_the_json_convention_and_the_published_schemas(api: httpx.AsyncClient) -> None:
    job_id = await enqueue(api, data={"duration_ms": 5}, delayMs=60_000)
    asked = [
        ("get", "/api/queues", "/api/queues", None),
        ("get", "/api/queues/workflow", "/api/queues/{queue}", None),
        ("get", "/api/queue/stats", "/api/queue/stats", None),
        ("get", "/api/queues/health", "/api/queues/health", None),
        ("get", JOBS + "?state=delayed", "/api/queues/{queue}/jobs", None),
        ("get", f"{JOBS}/{job_id}", "/api/queues/{queue}/jobs/{job_id}", None),
        ("post", JOBS, "/api/queues/{queue}/jobs", {"name": HEAVY, "jobId": job_id}),
        ("post", JOBS, "/api/queues/{queue}/jobs", {"name": HEAVY, "data": {"duration_ms": "abc"}}),
        ("get", "/api/queues/nope", "/api/queues/{queue}", None),
        ("get", JOBS + "?page_size=5", "/api/queues/{queue}/jobs", None),
        ("post", "/api/queues/workflow/pause", "/api/queues/{queue}/pause", None),
        ("post", f"{JOBS}/{job_id}/promote", "/api/queues/{queue}/jobs/{job_id}/promote", None),
        ("get", JOBS + "?state=paused", "/api/queues/{queue}/jobs", None),
        ("post", "/api/queues/workflow/resume", "/api/queues/{queue}/resume", None),
        ("post", f"{JOBS}/{job_id}/retry", "/api/queues/{queue}/jobs/{job_id}/retry", None),
        ("post", "/api/queues/workflow/retry-failed", "/api/queues/{queue}/retry-failed", None),
        ("post", f"{JOBS}/{job_id}/remove", "/api/queues/{queue}/jobs/{job_id}/remove", None),
        ("post", "/api/queues/workflow/clean", "/api/queues/{queue}/clean", {"state": "completed"}),
        ("post", JOBS, "/api/queues/{queue}/jobs", {"name": HEAVY, "data": {"duration_ms": 5}}),
    ]
    answers = [await api.request(method, url, json=body) for method, url, _, body in asked]
    assert [a.status_code for a in answers] == [
        200, 200, 200, 200, 200, 200, 409, 400, 404, 400, 200, 200, 200, 200, 400, 200, 200, 200, 200
    ]  # fmt: skip
    assert answers[12].json()["data"][0]["state"] == "paused"
    broken = [(a.request.method, str(a.request.url), convention_breaks(a.json())) for a in answers]
    assert [b for b in broken if b[2]] == []
    spec = (await api.get("/openapi.json")).json()
    for answer, (method, _, template, _) in zip(answers, asked, strict=True):
        check_against_openapi(spec, method, template, answer.status_code, answer.json())


async def test_job_tracebacks_are_for_admins_and_the_completed_event_carries_the_result(
    admin_server: AdminServer, declared: QueueSpec, start_worker: StartWorker, layer: QueueAdmin, tmp_path: Path
) -> None:
    keys = await make_keys(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
    settings = GatewaySettings(
        queue_admin_addr=admin_server.address, rpc_timeout_seconds=5.0, database_url=keys.database_url
    )
    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client,
        ):
            await start_worker(attempts=1)
            watch = admin_server.stub.WatchEvents(Q.WatchEventsRequest(queues=["workflow"]))
            first = await asyncio.wait_for(watch.read(), 10)
            assert isinstance(first, Q.JobEvent)
            assert first.subscribed
            admin = {"Authorization": f"Bearer {keys.admin}"}
            reader = {"Authorization": f"Bearer {keys.read}"}
            failing = await client.post(JOBS, json={"name": HEAVY, "data": {"fail_times": 1}}, headers=admin)
            working = await client.post(JOBS, json={"name": HEAVY, "data": {"duration_ms": 1}}, headers=admin)
            failing_id, working_id = failing.json()["data"]["jobId"], working.json()["data"]["jobId"]
            completed = None
            async with asyncio.timeout(10):
                while completed is None:
                    event = await watch.read()
                    assert isinstance(event, Q.JobEvent)
                    if event.event == "completed" and event.job_id == working_id:
                        completed = json.loads(event.detail_json)
            watch.cancel()
            assert completed == {"result": {"kind": HEAVY, "attempt": 1, "workedMs": 1}}

            async def failed() -> bool:
                return (await layer.counts()).failed == 1

            await wait_until(failed, within=10, what="job failed")
            (as_admin,) = (await client.get(f"{JOBS}/{failing_id}", headers=admin)).json()["data"]["errors"]
            (as_reader,) = (await client.get(f"{JOBS}/{failing_id}", headers=reader)).json()["data"]["errors"]
            assert "Traceback" in as_admin["traceback"]
            assert as_reader["traceback"] is None
            assert {k: v for k, v in as_reader.items() if k != "traceback"} == {
                k: v for k, v in as_admin.items() if k != "traceback"
            }
            listed = (await client.get(JOBS, params={"state": "failed"}, headers=reader)).json()["data"]
            assert listed[0]["errors"][0]["traceback"] is None
    finally:
        await keys.store.close()
