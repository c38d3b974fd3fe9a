"""The drill's load counts each call in the right phase: a failure where it failed, an answer where it began.

A real HTTP server on loopback stands in for a gateway; while a call is in flight it moves the
drill on to the next phase, as the drill does just before it kills a replica.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator

import pytest

from scripts.drill_load import Load

Behaviour = Callable[[http.server.BaseHTTPRequestHandler], None]


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[Behaviour]]]:
    """A loopback server whose answer to each request is the next behaviour in the list."""
    behaviours: list[Behaviour] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            behaviours.pop(0)(self)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", behaviours
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
    body = json.dumps({"data": {"lastIngestAt": 1}}).encode()
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def moving_on(load: Load, then: Behaviour) -> Behaviour:
    def behaviour(handler: http.server.BaseHTTPRequestHandler) -> None:
        load.phase = "gateway killed"
        then(handler)

    return behaviour


def hang_up(handler: http.server.BaseHTTPRequestHandler) -> None:
    """What a killed gateway does to a call in flight: the connection closes with no answer."""
    handler.close_connection = True


@pytest.mark.timeout(30)
def test_a_call_cut_off_by_a_kill_counts_as_failed_in_the_kills_phase(gateway: tuple[str, list[Behaviour]]) -> None:
    url, behaviours = gateway
    load = Load([url])
    load.phase = "notify_worker restarting"
    behaviours.append(moving_on(load, hang_up))

    assert load.call_once("reads", url) is False

    reads = load.tallies["reads"]
    assert dict(reads.failed) == {"gateway killed": 1}
    assert not reads.ok
    [(why, count)] = reads.why.items()
    assert why.startswith("gateway killed: ")
    assert "closed connection without response" in why
    assert count == 1


@pytest.mark.timeout(30)
def test_an_answer_counts_in_the_phase_its_call_began_in(gateway: tuple[str, list[Behaviour]]) -> None:
    url, behaviours = gateway
    load = Load([url])
    load.phase = "status killed"
    behaviours.extend([moving_on(load, answer), answer])

    assert load.call_once("reads", url) is True
    assert load.call_once("reads", url) is True

    reads = load.tallies["reads"]
    assert dict(reads.ok) == {"status killed": 1, "gateway killed": 1}
    assert not reads.failed
