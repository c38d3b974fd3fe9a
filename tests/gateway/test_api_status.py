"""/api/queue-status/* through the app and a real grpc.aio StatusService (in-memory fake) on loopback."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from switchboard.status.v1 import status_pb2 as S

from runtime.errors import InvalidArgument
from tests.gateway.fake_status import FakeStatusService
from tests.gateway.harness import Backends

API = "/api/queue-status"


async def test_operators_list_every_membership_with_count_and_meta(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/operators")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["meta"]["count"] == 3 == len(body["data"])
    assert body["meta"]["source"] == "redis"
    assert body["meta"]["stale"] is False
    rows = {(o["queueName"], o["memberId"]): o for o in body["data"]}
    assert rows[("support", "Local/1001@agents")]["pausedReason"] == "Lunch"
    assert rows[("sales", "Local/1001@agents")]["paused"] is False
    assert rows[("sales", "PJSIP/1002")]["status"] == "ringing"


async def test_operator_filters_reach_the_service(client: httpx.AsyncClient, fake_status: FakeStatusService) -> None:
    response = await client.get(f"{API}/operators", params={"queue": "sales", "status": "ringing", "paused": "false"})
    assert response.status_code == 200
    assert [o["memberId"] for o in response.json()["data"]] == ["PJSIP/1002"]
    sent = fake_status.requests[-1]
    assert isinstance(sent, S.ListOperatorsRequest)
    assert (sent.queue_name, sent.status, sent.paused) == ("sales", S.MEMBER_STATUS_RINGING, False)


async def test_paused_filter_true(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/operators", params={"paused": "true"})).json()
    assert [(o["queueName"], o["memberId"]) for o in body["data"]] == [("support", "Local/1001@agents")]


async def test_operators_of_one_queue(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/operators/queue/support")).json()
    assert body["meta"]["count"] == 1
    assert body["data"][0]["queueName"] == "support"


async def test_operators_of_an_unknown_queue_are_404_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/operators/queue/nope")
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["details"]["queue"]) == ("NOT_FOUND", "nope")


async def test_a_known_queue_whose_filter_matches_nobody_is_an_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/operators/queue/support", params={"status": "busy"})
    assert response.status_code == 200
    assert response.json()["data"] == []


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/operators/Local/1001@agents",
        f"{API}/operators/{quote('Local/1001@agents', safe='')}",
    ],
    ids=["slashes-in-path", "url-encoded"],
)
async def test_one_operator_by_member_id_with_slash_and_at(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["count"] == 2
    assert {o["queueName"] for o in body["data"]} == {"sales", "support"}
    assert {o["memberId"] for o in body["data"]} == {"Local/1001@agents"}


async def test_one_operator_limited_to_a_queue(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/operators/PJSIP/1002", params={"queue": "sales"})).json()
    assert [o["queueName"] for o in body["data"]] == ["sales"]


async def test_unknown_operator_is_404_with_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/operators/PJSIP/9999")
    assert response.status_code == 404
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "NOT_FOUND"
    assert "PJSIP/9999" in body["error"]["message"]
    assert body["error"]["details"]["reason"] == "NotFound"


async def test_queues_with_waiting_callers(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/queues")).json()
    assert body["meta"]["count"] == 2
    sales = next(q for q in body["data"] if q["name"] == "sales")
    assert sales["waiting"] == 1
    assert sales["callers"][0]["callerIdName"] == "Carol"
    assert sales["longestWaitMs"] == 42_000


async def test_one_queue_with_its_operators(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/queues/sales")).json()
    assert body["data"]["queue"]["strategy"] == "ringall"
    assert {o["memberId"] for o in body["data"]["operators"]} == {"Local/1001@agents", "PJSIP/1002"}


async def test_channels(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/channels")).json()
    assert body["meta"]["count"] == 1
    assert body["data"][0]["bridgedTo"] == "Local/1001@agents-0003;1"


async def test_snapshot_has_the_public_json_names(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/snapshot")
    assert response.status_code == 200
    body = response.json()
    data, meta = body["data"], body["meta"]
    assert set(data) == {"operators", "queues", "channels", "revision"}
    assert set(meta) == {"source", "stale", "asOf", "lastIngestAt"}  # the envelope's meta, top-level
    assert meta["source"] == "redis"
    assert meta["stale"] is False
    assert isinstance(meta["asOf"], int)
    assert len(data["operators"]) == 3
    assert data["queues"][0]["callers"][0]["joinedAt"] > 1_000_000_000_000  # epoch ms
    assert data["channels"][0]["uniqueId"] == "1700000000.1"


async def test_snapshot_reports_database_source(client: httpx.AsyncClient, fake_status: FakeStatusService) -> None:
    fake_status.source = S.SOURCE_DATABASE
    assert (await client.get(f"{API}/snapshot")).json()["meta"]["source"] == "database"


async def test_sync_status_names(client: httpx.AsyncClient) -> None:
    data = (await client.get(f"{API}/sync/status")).json()["data"]
    assert data == {
        "dbMembers": 3,
        "dbQueues": 2,
        "redisOperators": 3,
        "redisQueues": 2,
        "redisChannels": 1,
        "redisAvailable": True,
        "lastIngestAt": 1_700_000_000_500,
        "stale": False,
    }


async def test_resync_and_clear(client: httpx.AsyncClient) -> None:
    resync = await client.post(f"{API}/sync/resync")
    assert resync.json()["data"] == {"queuesSeeded": 2, "operatorsSeeded": 3, "asteriskResyncRequested": True}
    cleared = await client.delete(f"{API}/clear")
    assert cleared.json() == {"success": True, "data": {"removedKeys": 6}}
    assert (await client.get(f"{API}/operators")).json()["meta"]["count"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "sleeping"}, "status"),
        ({"paused": "maybe"}, "paused"),
        ({"queue": ""}, "queue"),
        ({"page_size": "1"}, "page_size"),  # unknown query parameters are refused like unknown body fields
        ({"queue": "sales", "Status": "idle"}, "Status"),
    ],
)
async def test_bad_query_is_400_naming_the_field(
    client: httpx.AsyncClient, fake_status: FakeStatusService, params: dict[str, str], field: str
) -> None:
    before = len(fake_status.requests)
    response = await client.get(f"{API}/operators", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"{field}:")
    assert len(fake_status.requests) == before, "a bad request must not reach the backend"


async def test_backend_invalid_argument_is_400_with_its_details(
    client: httpx.AsyncClient, fake_status: FakeStatusService
) -> None:
    fake_status.fail_with = InvalidArgument("queue_name", "must not contain spaces")
    response = await client.get(f"{API}/operators", params={"queue": "a b"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["message"] == "queue_name: must not contain spaces"
    assert error["details"]["field"] == "queue_name"
    assert error["details"]["fieldViolations"] == [{"field": "queue_name", "description": "must not contain spaces"}]


async def test_status_service_down_is_503_unavailable(client: httpx.AsyncClient, backends: Backends) -> None:
    await backends.status.stop()
    response = await client.get(f"{API}/snapshot")
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "UNAVAILABLE"
    assert body["error"]["message"]


async def test_stream_with_status_down_is_503_not_a_broken_stream(
    client: httpx.AsyncClient, backends: Backends
) -> None:
    await backends.status.stop()
    response = await client.get(f"{API}/stream")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "UNAVAILABLE"


async def test_snapshot_rows_follow_a_change_at_a_new_revision(
    client: httpx.AsyncClient, fake_status: FakeStatusService
) -> None:
    first = (await client.get(f"{API}/snapshot")).json()["data"]
    again = (await client.get(f"{API}/snapshot")).json()["data"]
    assert first["operators"] == again["operators"]
    fake_status.push(S.StateChange(channel_removed="1700000000.1"))
    assert (await client.get(f"{API}/snapshot")).json()["data"]["channels"] == []
